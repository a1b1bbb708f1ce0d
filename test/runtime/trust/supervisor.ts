// Test helper for the trust suites: runs jobs (conformance cases, fuzz mutants) in child processes so that
// whatever a job does to its process is seen instead of taking the test runner down. A native abort is a
// `crash`, a job past its deadline a `hang`, a process growing past a memory bound (e.g. reading /dev/zero)
// a `memory` outcome; the child is then killed and a fresh one continues with the next job. Children speak
// job-child.ts's protocol over the IPC channel; their stdin is a pipe nobody writes to, so a read of
// /dev/stdin blocks (and is caught as a hang) instead of reading the test runner's input.
import { fork, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import type { ChildMessage } from "./job-child.js";

/** A job: an id, and whatever the child script understands. */
export interface Job {
  id: string;
}

/** How one job ended. */
export type JobOutcome<R> =
  | { id: string; kind: "done"; result: R; ms: number }
  | { id: string; kind: "crash" | "hang" | "memory"; phase: string; detail: string; ms: number };

/** Options of {@link superviseJobs}. */
export interface SuperviseOptions {
  /** Deadline of one job (after the child announced it is ready). */
  timeoutMs: number;
  /** Deadline of a child's start-up (runtime creation) before its first job. */
  startTimeoutMs?: number;
  /** Resident memory bound of a child; above it the child is killed and the job reported `memory`. */
  maxRssBytes?: number;
  /** Arguments of the child script (e.g. the shared cache root). */
  args?: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Called as each job ends (progress output). */
  onOutcome?: (o: JobOutcome<unknown>, index: number, total: number) => void;
}

function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** The last lines of a child's stderr, without onnxruntime's warnings. */
function tail(text: string): string {
  const lines = text
    .split("\n")
    .filter((l) => l.trim() && !/\[W:onnxruntime/.test(l))
    .slice(-12);
  return lines.join("\n").slice(-2000);
}

/** One child process and the job it is running. */
class Child {
  readonly proc: ChildProcess;
  stderr = "";
  readonly ready: Promise<void>;
  private onMessage: ((m: ChildMessage) => void) | undefined;
  readonly exited: Promise<string>;

  constructor(script: string, options: SuperviseOptions) {
    this.proc = fork(script, options.args ?? [], {
      // tsx by its resolved URL: a child may run in a working directory that has no node_modules.
      execArgv: ["--import", import.meta.resolve("tsx")],
      stdio: ["pipe", "pipe", "pipe", "ipc"],
      cwd: options.cwd ?? process.cwd(),
      env: options.env ?? process.env,
      serialization: "advanced",
    });
    this.proc.stdout!.on("data", () => {});
    this.proc.stderr!.on("data", (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-20000);
    });
    this.exited = new Promise((resolve) =>
      this.proc.on("exit", (code, signal) => resolve(signal ? `signal ${signal}` : `exit code ${code}`)),
    );
    this.ready = new Promise((resolve, reject) => {
      this.onMessage = (m) => (m.type === "ready" ? resolve() : undefined);
      void this.exited.then((how) =>
        reject(new Error(`child exited at start (${how}): ${tail(this.stderr)}`)),
      );
    });
    this.proc.on("message", (m: ChildMessage) => this.onMessage?.(m));
  }

  listen(handler: (m: ChildMessage) => void): void {
    this.onMessage = handler;
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill("SIGKILL");
  }
}

/**
 * Runs `jobs` in order in children of `script` (a module calling `serveJobs` of job-child.ts), one job at a
 * time, and returns each job's outcome. A child that crashes, hangs or outgrows its memory bound is killed
 * and replaced; the job it was running is reported so.
 */
export async function superviseJobs<J extends Job, R>(
  script: string,
  jobs: readonly J[],
  options: SuperviseOptions,
): Promise<JobOutcome<R>[]> {
  const outcomes: JobOutcome<R>[] = [];
  let child: Child | undefined;
  try {
    for (let index = 0; index < jobs.length; index++) {
      const job = jobs[index]!;
      if (!child) {
        child = new Child(script, options);
        const startTimeout = options.startTimeoutMs ?? 120_000;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          child.ready,
          new Promise((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`child not ready after ${startTimeout} ms`)),
              startTimeout,
            );
          }),
        ]).finally(() => clearTimeout(timer));
      }
      const outcome = await runOne<R>(child, job, options);
      outcomes.push(outcome);
      options.onOutcome?.(outcome, index, jobs.length);
      if (outcome.kind !== "done") {
        child.kill();
        await child.exited;
        child = undefined;
      }
    }
  } finally {
    if (child) {
      if (child.proc.connected) child.proc.send({ type: "exit" });
      else child.kill();
      const bye = setTimeout(() => child?.kill(), 5000);
      await child.exited;
      clearTimeout(bye);
    }
  }
  return outcomes;
}

function runOne<R>(child: Child, job: Job, options: SuperviseOptions): Promise<JobOutcome<R>> {
  const t0 = performance.now();
  const ms = () => Math.round(performance.now() - t0);
  let phase = "start";
  return new Promise((resolve) => {
    let settled = false;
    const finish = (o: JobOutcome<R>) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearInterval(watch);
      resolve(o);
    };
    const deadline = setTimeout(() => {
      child.kill();
      finish({
        id: job.id,
        kind: "hang",
        phase,
        detail: `no result after ${options.timeoutMs} ms`,
        ms: ms(),
      });
    }, options.timeoutMs);
    const watch = setInterval(() => {
      const rss = rssOf(child.proc.pid!);
      if (options.maxRssBytes && rss > options.maxRssBytes) {
        child.kill();
        finish({
          id: job.id,
          kind: "memory",
          phase,
          detail: `resident memory ${(rss / 2 ** 20).toFixed(0)} MiB passed ${(options.maxRssBytes / 2 ** 20).toFixed(0)} MiB`,
          ms: ms(),
        });
      }
    }, 100);
    child.listen((m) => {
      if (m.type === "phase" && m.id === job.id) phase = m.phase;
      if (m.type === "result" && m.id === job.id)
        finish({ id: job.id, kind: "done", result: m.result as R, ms: ms() });
    });
    void child.exited.then((how) =>
      finish({ id: job.id, kind: "crash", phase, detail: `${how}: ${tail(child.stderr)}`, ms: ms() }),
    );
    child.proc.send({ type: "job", job });
  });
}

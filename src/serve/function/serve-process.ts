// A `cicada serve` child process seen from its parent (benchmarks, tests): spawned with the same Node and
// loader, its port learnt from the one listening line it prints, its stderr kept, and stopped with a signal
// and a bound on the wait. Never waited on forever: a process that does not listen in time is killed.
import { spawn, type ChildProcess } from "node:child_process";
import { CicadaError } from "../../errors.js";
import { cliArgs } from "../../util/own-entry.js";
import { parseListeningLine, type ListeningLine } from "./listening-line.js";

/** The `cicada` command in the form this package runs in (compiled, or the sources through tsx). */
const CLI = cliArgs();

/** A listening server process. */
export interface ServeProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly pid: number;
  /** `http://127.0.0.1:<port>` */
  readonly base: string;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (-1 if killed by a signal) once it has exited. */
  readonly exited: Promise<number | null>;
  /** Sends `signal` (default SIGTERM), waits for the exit, SIGKILL after `timeoutMs`. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

/**
 * Spawns `cicada serve ...args` (give `--port 0` for an ephemeral port) and resolves once it listens;
 * rejects with E_RUNTIME and its stderr if it exits or has not listened within `timeoutMs`.
 */
export function spawnServe(
  args: readonly string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<ServeProcess> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const child = spawn(process.execPath, [...CLI, "serve", ...args], {
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? (signal ? -1 : null))),
  );
  const stop = async (signal: NodeJS.Signals = "SIGTERM", limit = 30_000) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), limit);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };
  return new Promise<ServeProcess>((resolve, reject) => {
    const fail = (why: string) => reject(new CicadaError("E_RUNTIME", `cicada serve ${why}:\n${stderr}`));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      fail(`did not listen within ${timeoutMs} ms`);
    }, timeoutMs);
    let listening = false;
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      const newline = stdout.indexOf("\n");
      if (listening || newline < 0) return;
      listening = true;
      clearTimeout(timer);
      let line: ListeningLine;
      try {
        line = parseListeningLine(stdout.slice(0, newline));
      } catch {
        child.kill("SIGKILL");
        return fail(`printed '${stdout.slice(0, newline)}' instead of its listening line`);
      }
      resolve({
        child,
        port: line.port,
        pid: line.pid,
        base: `http://127.0.0.1:${line.port}`,
        stdout: () => stdout,
        stderr: () => stderr,
        exited,
        stop,
      });
    });
    void exited.then((code) => {
      clearTimeout(timer);
      if (!listening) fail(`exited with ${code} before listening`);
    });
  });
}

// The platform's pool of instances: `cicada serve` processes spawned on loopback, each with the lifecycle
// cold → loading → warm → busy → idle → evicted as an enum with one transition function that refuses
// illegal moves and records when each state was entered. The pool spawns instances (learning each port
// from its `listening` line), replaces one that exits, samples their memory every ~100 ms into the ledger
// and a timeline, and stops them all on close. An instance serves one request at a time (as a serverless
// function instance does); the gateway decides which, the pool keeps the books.
// NOTE: the pool spawns its processes itself rather than through function/serve-process.ts: it must hold
// every child from the moment it exists (not once it listens), so that closing the pool, or this process
// exiting, never leaves an instance behind that was still starting.
import { spawn, type ChildProcess } from "node:child_process";
import { EventEmitter } from "node:events";
import { CicadaError } from "../../errors.js";
import { now } from "../../metrics/trace.js";
import type { StrategyName } from "../../config.js";
import { readFile } from "node:fs/promises";
import { processMemoryOf } from "../../metrics/proc-memory.js";
import { httpOrigin } from "../function/listening-line.js";
import { PoolInstance, type ExitInfo } from "./pool-instance.js";
import type { MemoryLedger } from "./pool-memory.js";
import { cliArgs } from "../../util/own-entry.js";

/** Memory points kept at most (the older half is dropped past it). */
const TIMELINE_POINTS = 200_000;
/** The `cicada` command in the form this package runs in (compiled, or the sources through tsx). */
const CLI = cliArgs();

/** Options of {@link InstancePool.start}. */
export interface PoolOptions {
  bundles: string[];
  instances: number;
  strategy: StrategyName;
  /** Start instances with `--stateless`. */
  stateless: boolean;
  cacheRoot?: string;
  /** Stage worker threads per instance (`--workers`). */
  workers?: number;
  /** Further `cicada serve` flags (e.g. --timeout-ms). */
  serveArgs?: string[];
  /** How long an instance may take to announce its port (default 120 s: the first prepares the models). */
  startTimeoutMs?: number;
  /** Memory sampling interval (default 100 ms). */
  sampleIntervalMs?: number;
  ledger: MemoryLedger;
  /** Instances' stderr lines and the pool's own events. */
  log?: (line: string) => void;
}

/** One point of the memory timeline. */
export interface MemoryPoint {
  t: number;
  hostBytes: number;
  pssSumBytes: number;
  rssSumBytes: number;
  anonSumBytes: number;
  instances: number;
}

/** A pool of instance processes. */
export class InstancePool extends EventEmitter {
  /** Live instances (listening, not evicted), in start order. */
  readonly instances: PoolInstance[] = [];
  /** Every instance ever started, for lifecycle reports. */
  readonly history: PoolInstance[] = [];
  readonly timeline: MemoryPoint[] = [];
  private closing = false;
  private next = 1;
  private sampler: NodeJS.Timeout | undefined;
  private sampling: Promise<void> | undefined;
  private readonly children = new Set<ChildProcess>();
  private readonly killAll = () => {
    for (const c of this.children) c.kill("SIGKILL");
  };

  private constructor(private readonly o: PoolOptions) {
    super();
  }

  /** Starts `instances` instances (after a throw-away one that prepares the models' cached forms) and the sampler. */
  static async start(o: PoolOptions): Promise<InstancePool> {
    if (!Number.isInteger(o.instances) || o.instances < 1)
      throw new CicadaError("E_USAGE", `--instances must be an integer >= 1, found ${o.instances}`);
    const pool = new InstancePool(o);
    process.once("exit", pool.killAll);
    try {
      await pool.prepare();
      await Promise.all(Array.from({ length: o.instances }, () => pool.spawn()));
    } catch (e) {
      await pool.close();
      throw e;
    }
    pool.sampler = setInterval(() => void pool.sample(), o.sampleIntervalMs ?? 100);
    pool.sampler.unref();
    await pool.sample();
    return pool;
  }

  /**
   * Builds the models' cached forms (MiniLoader's optimised stages…) in a throw-away instance, stopped once
   * it listens: an instance keeps the memory of that work (onnxruntime's optimisation passes), so none of
   * the pool's instances does it, and they do not race to do it.
   */
  private async prepare(): Promise<void> {
    const preparer = await this.spawn("i0");
    preparer.stopping = true;
    preparer.child.kill("SIGTERM");
    await preparer.exited;
    this.history.splice(this.history.indexOf(preparer), 1);
  }

  /** The live instance `id`. */
  get(id: string): PoolInstance | undefined {
    return this.instances.find((i) => i.id === id);
  }

  private args(): string[] {
    const o = this.o;
    return [
      ...CLI,
      "serve",
      ...o.bundles,
      ...["--host", "127.0.0.1", "--port", "0", "--strategy", o.strategy],
      ...(o.stateless ? ["--stateless"] : []),
      ...(o.cacheRoot ? ["--cache-root", o.cacheRoot] : []),
      ...(o.workers ? ["--workers", String(o.workers)] : []),
      ...(o.serveArgs ?? []),
    ];
  }

  /** Spawns one instance and resolves when it listens. */
  async spawn(id = `i${this.next++}`): Promise<PoolInstance> {
    const child = spawn(process.execPath, this.args(), { stdio: ["ignore", "pipe", "pipe"] });
    this.children.add(child);
    const stderr: string[] = [];
    const log = this.o.log;
    let partial = "";
    child.stderr.on("data", (d: Buffer) => {
      const lines = (partial + d.toString()).split("\n");
      partial = lines.pop()!;
      for (const l of lines) {
        stderr.push(l);
        if (stderr.length > 20) stderr.shift();
        log?.(`[${id}] ${l}`);
      }
    });
    const exited = new Promise<ExitInfo>((resolve) =>
      child.once("exit", (code, signal) => resolve({ code, signal, at: now() })),
    );
    void exited.then(() => this.children.delete(child));
    let listening: { host: string; port: number; pid: number };
    try {
      listening = await PoolInstance.awaitListening(child, exited, this.o.startTimeoutMs ?? 120_000);
    } catch (e) {
      child.kill("SIGKILL");
      const tail = stderr.slice(-5).join("\n  ");
      throw new CicadaError(
        "E_INSTANCE_START",
        `instance ${id}: ${(e as Error).message}${tail ? `; its last stderr lines:\n  ${tail}` : ""}`,
      );
    }
    // Nothing else is expected on stdout; drain it so that a chatty instance can never block on a full pipe.
    child.stdout.resume();
    const instance = new PoolInstance(id, child, httpOrigin(listening.host, listening.port), exited);
    this.instances.push(instance);
    this.history.push(instance);
    log?.(`[pool] ${id} listening on port ${listening.port} (pid ${child.pid})`);
    void exited.then((info) => this.onExit(instance, info));
    this.emit("change");
    return instance;
  }

  private onExit(instance: PoolInstance, info: ExitInfo): void {
    const expected = instance.stopping || this.closing;
    if (instance.state !== "evicted") {
      instance.transition("evicted", expected ? "stopped" : `died (${info.signal ?? `exit ${info.code}`})`);
    }
    const at = this.instances.indexOf(instance);
    if (at >= 0) this.instances.splice(at, 1);
    this.o.ledger.remove(instance.id);
    this.o.log?.(`[pool] ${instance.id} exited (${info.signal ?? `code ${info.code}`})`);
    this.emit("exit", instance, info);
    this.emit("change");
    if (!this.closing && (!expected || instance.replace)) {
      this.spawn().then(
        (replacement) => this.emit("replaced", instance, replacement),
        (e: unknown) => this.o.log?.(`[pool] replacing ${instance.id} failed: ${(e as Error).message}`),
      );
    }
  }

  /**
   * Stops a free instance (SIGTERM) and starts a replacement; it is evicted at once, so nothing is routed
   * to it while it exits.
   */
  recycle(instance: PoolInstance, reason: string): void {
    instance.stopping = true;
    instance.replace = true;
    instance.transition("evicted", reason);
    instance.child.kill("SIGTERM");
  }

  /**
   * Reads instance `i`'s memory into the ledger. NOTE: reading smaps_rollup walks the process's page tables
   * (~5 ms for a 200 MB instance here), so it is read off the event loop, in libuv's thread pool.
   */
  async sampleInstance(i: PoolInstance): Promise<void> {
    try {
      const [status, rollup] = await Promise.all([
        readFile(`/proc/${i.pid}/status`, "latin1"),
        readFile(`/proc/${i.pid}/smaps_rollup`, "latin1"),
      ]);
      const memory = processMemoryOf(i.pid, status, rollup);
      if (i.state !== "evicted") this.o.ledger.update(i.id, memory);
    } catch {
      // The process exited meanwhile: its exit handler removes it from the ledger.
    }
  }

  /** Samples every live instance and appends a timeline point (a sample still running is not doubled). */
  sample(): Promise<void> {
    this.sampling ??= Promise.all(this.instances.map((i) => this.sampleInstance(i))).then(() => {
      this.sampling = undefined;
      const ledger = this.o.ledger;
      let pss = 0;
      for (const i of this.instances) pss += ledger.instanceBytes(i.id);
      this.timeline.push({
        t: now(),
        hostBytes: ledger.hostBytes(),
        pssSumBytes: pss,
        rssSumBytes: ledger.rssSumBytes(),
        anonSumBytes: ledger.anonSumBytes(),
        instances: this.instances.length,
      });
      // A platform that runs for days keeps the last ~3 hours (at 100 ms).
      if (this.timeline.length > TIMELINE_POINTS)
        this.timeline.splice(0, this.timeline.length - TIMELINE_POINTS / 2);
    });
    return this.sampling;
  }

  /** Stops every instance: SIGTERM, then SIGKILL after `graceMs`. */
  async close(graceMs = 10_000): Promise<void> {
    this.closing = true;
    if (this.sampler) clearInterval(this.sampler);
    const live = [...this.children];
    await Promise.all(
      live.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const timer = setTimeout(() => c.kill("SIGKILL"), graceMs);
            c.once("exit", () => {
              clearTimeout(timer);
              resolve();
            });
            c.kill("SIGTERM");
            // A stopped process (SIGSTOP) would hold the signal until it is continued.
            c.kill("SIGCONT");
          }),
      ),
    );
    process.off("exit", this.killAll);
  }
}

// An instance's runtime: where sessions run (stage worker threads with onnxruntime, or the calling thread
// for a load with nothing to overlap: inline-sessions.ts), where derived forms are cached, and the work
// left for after an answer. It is created on the path of a cold start (a serverless handler creates it
// and loads a model at once), so creating it waits for nothing: workers start when a load first needs
// them (with `executor: "workers"`, worker 0 at once). A caller that starts an instance ahead of its
// first request (a server, a benchmark's pre-started instance) awaits `ready()` to have every worker up.
import { defaultCacheRoot, DEFAULTS } from "../config.js";
import { InlineSessions } from "./inline-sessions.js";
import { WorkerPool } from "./worker-pool.js";

/** Options of {@link createRuntime}. */
export interface RuntimeOptions {
  /** Stage worker threads (default 2: one per core of the target machines). */
  workers?: number;
  /** Intra-op threads of each session (default 2). */
  intraOpNumThreads?: number;
  /** Cache of derived forms (MiniLoader entries, PISeL stage files, ort-best models). */
  cacheRoot?: string;
  /**
   * `auto` (default): a load with one session and nothing to overlap (cicada's whole plan on a verified
   * cache entry) runs on the calling thread, and no worker starts until a load needs one; `workers`:
   * every session on the stage workers, worker 0 started at once (a server, whose event loop must not
   * block in onnxruntime).
   */
  executor?: "auto" | "workers";
}

/** A started runtime. */
export interface Runtime {
  readonly pool: WorkerPool;
  readonly cacheRoot: string;
  readonly intraOpNumThreads: number;
  readonly executor: "auto" | "workers";
  /** Sessions on the calling thread (see {@link RuntimeOptions.executor}). */
  readonly inline: InlineSessions;
  /** Starts every worker not started yet; resolves once onnxruntime is initialised in each. */
  ready(): Promise<void>;
  /**
   * Runs `task` off any request's path (MiniLoader's build after a load that went without it); a failure
   * is a warning. {@link close} waits for it.
   */
  background(task: () => Promise<void>): void;
  /**
   * Waits for background tasks, then stops the workers (after the work already in them); a process with
   * an open runtime does not exit.
   */
  close(): Promise<void>;
}

/**
 * Creates a runtime without waiting for its worker threads: requests sent to a worker that is still
 * starting wait for it. A worker that cannot start fails the requests sent to it (E_RUNTIME), and
 * `ready()` rejects.
 */
export function createRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  // In an executor, so that bad options reject (as they did when this awaited the workers).
  return new Promise((resolve) => {
    const intraOpNumThreads = options.intraOpNumThreads ?? DEFAULTS.intraOpNumThreads;
    const executor = options.executor ?? "auto";
    const tasks = new Set<Promise<void>>();
    const start = executor === "auto" ? "none" : "lazy";
    const pool = new WorkerPool({ workers: options.workers ?? DEFAULTS.workers, intraOpNumThreads, start });
    resolve({
      pool,
      cacheRoot: options.cacheRoot ?? defaultCacheRoot(),
      intraOpNumThreads,
      executor,
      inline: new InlineSessions(intraOpNumThreads),
      ready: () => pool.ready(),
      background(task) {
        const done = task().catch((e: unknown) => {
          process.emitWarning(`background work failed: ${(e as Error).message}`, {
            code: "CICADA_BACKGROUND",
          });
        });
        tasks.add(done);
        void done.finally(() => tasks.delete(done));
      },
      async close() {
        await Promise.all(tasks);
        await pool.close();
      },
    });
  });
}

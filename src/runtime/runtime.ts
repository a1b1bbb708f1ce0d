// An instance's runtime: what a serverless instance sets up once when it starts, outside any request's
// clock — stage worker threads with onnxruntime initialised in each, and where derived forms are cached.
import { homedir } from "node:os";
import { join } from "node:path";
import { WorkerPool } from "./worker-pool.js";

/** Options of {@link createRuntime}. */
export interface RuntimeOptions {
  /** Stage worker threads (default 2: one per core of the target machines). */
  workers?: number;
  /** Intra-op threads of each session (default 2). */
  intraOpNumThreads?: number;
  /** Cache of derived forms (MiniLoader entries, PISeL stage files, ort-best models). */
  cacheRoot?: string;
}

/** A started runtime. */
export interface Runtime {
  readonly pool: WorkerPool;
  readonly cacheRoot: string;
  readonly intraOpNumThreads: number;
  close(): Promise<void>;
}

/** The cache root: $CICADA_CACHE, else $XDG_CACHE_HOME/cicada, else ~/.cache/cicada. */
export function defaultCacheRoot(): string {
  return process.env.CICADA_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "cicada");
}

/** Starts the worker threads and waits until onnxruntime is initialised in each. */
export async function createRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  const intraOpNumThreads = options.intraOpNumThreads ?? 2;
  const pool = new WorkerPool({ workers: options.workers ?? 2, intraOpNumThreads });
  await pool.ready();
  return {
    pool,
    cacheRoot: options.cacheRoot ?? defaultCacheRoot(),
    intraOpNumThreads,
    close: () => pool.close(),
  };
}

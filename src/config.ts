// Every default of the project and every CICADA_* environment variable, in one place: the strategy names
// (the paper's evaluation), the runtime's defaults, where the cache lives. Nothing here loads code: any
// layer may import it (the CLI's help, the report's ordering, the serving layer's environment).
import { homedir } from "node:os";
import { join } from "node:path";

/** The strategies of the paper's evaluation, in its order (whole-model peers first). */
export const STRATEGIES = ["eager", "ort-best", "pisel", "mini", "preload", "cicada"] as const;
export type StrategyName = (typeof STRATEGIES)[number];

/** True if `name` is a strategy. */
export function isStrategy(name: string): name is StrategyName {
  return (STRATEGIES as readonly string[]).includes(name);
}

/** The paper's hazard rule: A_i waits for A_{i-1} (`strict`) or only for L_i and R_i (`relaxed`). */
export const HAZARDS = ["strict", "relaxed"] as const;
export type Hazard = (typeof HAZARDS)[number];

/** The runtime's defaults (LoadOptions, RuntimeOptions). */
export const DEFAULTS = {
  /** Stage worker threads of a runtime that uses workers (servers). */
  workers: 2,
  /** onnxruntime's intra-op threads per session. */
  intraOpNumThreads: 2,
  hazard: "strict" as Hazard,
  /** Bytes per retrieval read. */
  chunkBytes: 4 * 2 ** 20,
  /** Retrieval reads in flight at once. */
  maxInFlight: 2,
  /** preload: stage buffers alive at most. */
  bufferBudgetBytes: 2 ** 30,
} as const;

/** The environment variables the project reads, and what each sets. */
export const ENV = {
  /** The cache root (derived forms, MiniLoader's graphs). */
  CICADA_CACHE: "cache root (default $XDG_CACHE_HOME/cicada, else ~/.cache/cicada)",
  CICADA_BUNDLES: "Lambda: comma-separated bundle directories (required)",
  CICADA_STRATEGY: "Lambda: the strategy",
  CICADA_STATELESS: "Lambda: 1/true to load per request",
  CICADA_WORKERS: "Lambda: stage workers",
  CICADA_MAX_BODY_BYTES: "Lambda: largest request body",
  CICADA_MAX_RECEIVING_BYTES: "Lambda: bodies still arriving, in bytes (default 4 x the body limit)",
  CICADA_MAX_QUEUE: "Lambda: requests admitted per model besides the one running",
  CICADA_TIMEOUT_MS: "Lambda: per-request limit",
} as const;

/** The cache root: $CICADA_CACHE, else $XDG_CACHE_HOME/cicada, else ~/.cache/cicada. */
export function defaultCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.CICADA_CACHE ?? join(env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "cicada");
}

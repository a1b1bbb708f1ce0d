// The public API of the runtime: `loadModel` starts a cold start and returns at once; `run` may be called
// immediately and executes stage i as soon as it is ready (execute-while-load); later runs reuse the
// stages (warm); `dispose` frees everything. The plan and the loader come from the strategy
// (loaders/by-strategy.ts, the only strategy switch); the loaded model (model/model-handle.ts) runs every
// strategy with the same loop.
import type { StrategyName } from "../config.js";
import { openBundle } from "../format/bundle.js";
import { now } from "../metrics/trace.js";
import { choosePlan, filesRead, loaderFor, memoryProfileOf, type Planned } from "./loaders/by-strategy.js";
import { anonymousBytes, defaultMemoryBudget, memoryMode, type MemoryMode } from "./memory-budget.js";
import { isVerified } from "./miniloader/verify.js";
import type { MiniLoaderEntry } from "../cache/miniloader-entry.js";
import type { LoadedModel, LoadOptions, PlanName } from "./model/model-api.js";
import { ModelHandle } from "./model/model-handle.js";
import { StageSessions } from "./model/stage-sessions.js";
import type { Runtime } from "./runtime.js";
import { SESSION_CONFIGS } from "./strategy.js";

export type { LoadedModel, LoadOptions, ModelRun, PlanName, RunOptions } from "./model/model-api.js";
export { filesRead };

/** Builds the on-disk forms a strategy needs for `plan` (cicada; default auto), outside any request's clock. */
export async function prepareModel(
  runtime: Runtime,
  bundleDir: string,
  strategy: StrategyName,
  plan: "auto" | PlanName = "auto",
): Promise<void> {
  await filesRead(runtime, bundleDir, strategy, plan);
}

/**
 * Starts loading the bundle in `bundleDir` with `options.strategy` and returns at once (after reading the
 * manifest). `run` may be called immediately.
 */
export async function loadModel(
  runtime: Runtime,
  bundleDir: string,
  options: LoadOptions,
): Promise<LoadedModel> {
  const bundle = await openBundle(bundleDir);
  const start = now();
  let planned = await choosePlan(runtime, bundle, options);
  const budget = options.memoryBudgetBytes ?? defaultMemoryBudget();
  const used = anonymousBytes();
  const modeOf = (p: Planned) =>
    memoryMode(
      bundle.manifest,
      bundle.dir,
      options.strategy,
      memoryProfileOf(options.strategy, p),
      budget,
      used,
    );
  let memory: MemoryMode;
  try {
    memory = modeOf(planned);
  } catch (e) {
    // cicada without its cache: the bundle's merged graph copies every weight; its pipeline can stream.
    if (!(planned.build && planned.plan === "whole")) throw e;
    planned = { ...planned, plan: "pipeline" };
    memory = modeOf(planned);
  }
  const planning =
    options.strategy === "cicada"
      ? { start, end: now(), ...(planned.build ? { build: planned.build } : {}) }
      : undefined;
  const inline =
    planned.plan === "whole" && options.strategy === "cicada" && runsInline(runtime, planned.entry);
  const sessions = new StageSessions(
    inline ? runtime.inline : runtime.pool,
    runtime.pool.size,
    bundle,
    { ...SESSION_CONFIGS.mapped, prepacking: options.prepack ?? false },
    options.memoryBudgetBytes !== undefined,
  );
  const model = new ModelHandle(runtime, bundle, options, planned.plan, sessions, planning);
  model.start(loaderFor({ runtime, bundle, options, sessions }, planned), memory);
  return model;
}

/**
 * The executor rule: a whole-model load of a verified MiniLoader graph (or of the bundle's merged graph
 * while there is no cache) runs on this thread, unless the runtime asked for workers. Nothing is left for
 * this thread to overlap: R has no checksums to compute, execution faults the weights in; a stage worker
 * would only add its own start.
 */
function runsInline(runtime: Runtime, entry: MiniLoaderEntry | undefined): boolean {
  // Without an entry the bundle's merged graph runs, built from weights this thread reads and verifies.
  return runtime.executor === "auto" && (entry === undefined || isVerified(entry, [entry.whole!]));
}

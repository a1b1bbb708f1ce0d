// The runtime's public contract for one model: the options of a load, what a request returns, and the
// loaded model's methods. The loading itself is runtime/loaders/ (one loader per family of strategies);
// the execution is model-handle.ts.
import type { Hazard, StrategyName } from "../../config.js";
import type { Manifest } from "../../format/manifest.js";
import type { Trace } from "../../metrics/trace.js";
import type { HostTensor } from "../host-tensor.js";

/** Options of `loadModel`. */
export interface LoadOptions {
  strategy: StrategyName;
  /**
   * The paper's hazard rule (metrics/pipeline-rule.ts): A_i waits for A_{i-1} (`strict`, default) or only
   * for L_i and R_i (`relaxed`). Applies to the strategies with a WeightDecoupler (preload, cicada's pipeline).
   */
  hazard?: Hazard;
  /** Bytes per retrieval read (default 4 MiB). */
  chunkBytes?: number;
  /**
   * The anonymous memory the process may hold while this model loads and runs (default: the machine's
   * memory or the cgroup's limit, the smaller). A strategy that copies weights streams when only a stage
   * at a time fits (each stage loaded before its execution and released after it, every request), and is
   * refused with E_MEMORY_BUDGET before allocating when not even that fits (memory-budget.ts). Given
   * explicitly, sessions also return freed activations at once instead of keeping an arena.
   */
  memoryBudgetBytes?: number;
  /** cicada: skip retrieving cached weights that are already in the page cache (default true). */
  skipResident?: boolean;
  /**
   * mini, cicada, ort-best: let kernels prepack the mapped weights (default false: prepacking copies every
   * MatMul/Gemm weight at creation; it pays only for a model kept warm for many requests).
   */
  prepack?: boolean;
  /**
   * cicada: `pipeline` runs the bundle's stages as a pipeline; `whole` builds one session from MiniLoader's
   * whole-model graph, its weights mapped, and runs it while the WeightDecoupler reads (and verifies) the
   * data file in execution order, when it is not resident or not yet verified; `auto` (default) chooses
   * `whole` when MiniLoader has that graph (models up to `wholeModelMaxBytes()`), else `pipeline`.
   * NOTE: measured on 2 cores, stage sessions only add work to execution, which already uses both cores,
   * and the whole graph's execution overlaps its retrieval as a pipeline's stages do
   * (docs/runtime-measurements.md).
   */
  plan?: "auto" | PlanName;
}

/** How a model is executed: as the bundle's stages in a pipeline, or as one whole-model session. */
export type PlanName = "pipeline" | "whole";

/** The result of one request. */
export interface ModelRun {
  outputs: Record<string, HostTensor>;
  /** Every unit task of the request; for the first (cold) request, the loading units too. */
  trace: Trace;
  /**
   * True if the request waited for (part of) a load: the first request while the model is loading, or one
   * that had to rebuild a lost stage. A request that arrives after `loaded` resolved is warm.
   */
  cold: boolean;
  /**
   * With `RunOptions.stageOutputs`: every stage's outputs, by tensor name (a whole-model strategy has one
   * stage, so only the graph outputs).
   */
  stageOutputs?: Record<string, HostTensor>;
}

/** Options of one request. */
export interface RunOptions {
  /** Keep a copy of every stage output (for per-stage checks against eager; costs one copy each). */
  stageOutputs?: boolean;
}

/** A model being loaded or loaded. */
export interface LoadedModel {
  readonly strategy: StrategyName;
  /** The plan this load uses (always `whole` for eager and ort-best). */
  readonly plan: PlanName;
  readonly manifest: Manifest;
  /** Resolves when every stage is ready (rejects if one failed to load). */
  readonly loaded: Promise<void>;
  run(feeds: Record<string, HostTensor>, options?: RunOptions): Promise<ModelRun>;
  dispose(): Promise<void>;
}

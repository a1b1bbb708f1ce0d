// The strategies of the paper's evaluation, all in one harness, as switches over the three components.
// The ablation is a flag away: `mini` = pisel + MiniLoader, `preload` = pisel + WeightDecoupler (and the
// scheduler), `cicada` = all three. `eager` and `ort-best` are whole-model peers.

import type { StrategyName } from "../config.js";
import type { StageSessionConfig } from "./worker-protocol.js";

/** What a strategy switches on. */
export interface StrategyComponents {
  /** Layer-wise pipeline over the bundle's stages (false: one whole-model session). */
  staged: boolean;
  /** Stages built from cached optimised graphs whose weights onnxruntime maps (no copies, no re-optimisation). */
  miniLoader: boolean;
  /** Retrievals of all stages issued at load start, in the background; application out of order. */
  weightDecoupler: boolean;
  /** The priority-aware retrieval scheduler (Algorithm 1 + stall rule); FIFO otherwise. */
  scheduler: boolean;
}

export const COMPONENTS: Record<StrategyName, StrategyComponents> = {
  eager: { staged: false, miniLoader: false, weightDecoupler: false, scheduler: false },
  "ort-best": { staged: false, miniLoader: false, weightDecoupler: false, scheduler: false },
  pisel: { staged: true, miniLoader: false, weightDecoupler: false, scheduler: false },
  mini: { staged: true, miniLoader: true, weightDecoupler: false, scheduler: false },
  preload: { staged: true, miniLoader: false, weightDecoupler: true, scheduler: true },
  cicada: { staged: true, miniLoader: true, weightDecoupler: true, scheduler: true },
};

/** How each kind of construction configures its onnxruntime session. */
export const SESSION_CONFIGS = {
  /** eager: what a Node.js user gets by default (`all`, spinning thread pool, prepacking). */
  eager: { graphOptimizationLevel: "all", allowSpinning: true },
  /** pisel, preload: a stage built from its weights with default construction options. */
  stageFromWeights: { graphOptimizationLevel: "all" },
  /**
   * MiniLoader's stages and ort-best's model: an already optimised graph whose weights onnxruntime maps
   * from the data file. Prepacking is off by default because it would copy every MatMul/Gemm weight (the
   * redundant work MiniLoader exists to skip); `LoadOptions.prepack` turns it back on for models that will
   * serve many warm requests, where packed weights run faster.
   */
  mapped: { graphOptimizationLevel: "disabled", prepacking: false },
} as const satisfies Record<string, StageSessionConfig>;

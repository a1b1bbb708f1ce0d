// The numbers our evaluation is compared with, each defined once: the paper's headline figures, and the
// targets the runtime issue (issue 3) set for this implementation. Reports print them next to what we
// measured; nothing here is measured.
import type { StrategyName } from "../config.js";

/**
 * Headline figures of the paper: Wu, Deng, Hu, Cui, Zhang, Zeng, Min, "Cicada: Enabling Pipeline-Efficient
 * Serverless DNN Inference via Decoupled Management", arXiv:2502.20959v2 — abstract and Section 5
 * (evaluation: latency Fig. 9, memory Fig. 10, utilisation Figs. 13–14, ablation of MiniLoader and
 * WeightDecoupler). Percentages are reductions (negative) or utilisation, as the paper states them; the
 * paper's baseline is PISeL.
 */
export const PAPER = {
  /** Average end-to-end latency change of Cicada against PISeL. */
  latencyVsPiselPct: -34.79,
  /** Latency reduction attributed to MiniLoader (the paper: "up to"). */
  miniLoaderUpToPct: 47.34,
  /** Latency improvement of WeightDecoupler (the paper: "up to"). */
  weightDecouplerUpToPct: 23.87,
  /** Cicada's pipeline utilisation across models (per cent). */
  utilizationPct: [99.41, 100] as const,
  /** Utilisation gain of Cicada over PISeL (the paper: "up to", per cent). */
  utilizationGainUpToPct: 68.49,
  /** Memory change of Cicada against PISeL (the paper: "45.77 % to 81.82 %" less). */
  memoryVsPiselPct: [-45.77, -81.82] as const,
} as const;

/** The scenarios issue 3 sets latency targets for; `fresh, cache cold` has none. */
export type TargetScenario = "reload/warm" | "fresh/warm" | "reload/cold";

/** Issue 3's latency targets: cicada's median over each peer's (≤), and over the floor. */
export interface LatencyTargets {
  vsEager: number;
  vsOrtBest: number;
  vsPisel: number;
  /** Factor over the floor (null: "report", no target). */
  floorFactor: number | null;
  /** What the floor is in this scenario. */
  floor: "warm run" | "max(weights / disk bandwidth, warm run)" | null;
}

/** The target table of issue 3 ("The Cicada runtime"), on resnet50, vgg16 and opt-1.3b. */
export const LATENCY_TARGETS: Record<TargetScenario, LatencyTargets> = {
  "reload/warm": { vsEager: 0.6, vsOrtBest: 1.0, vsPisel: 0.65, floorFactor: 1.6, floor: "warm run" },
  "fresh/warm": { vsEager: 0.33, vsOrtBest: 0.75, vsPisel: 0.65, floorFactor: null, floor: null },
  "reload/cold": {
    vsEager: 0.5,
    vsOrtBest: 0.8,
    vsPisel: 0.65,
    floorFactor: 1.2,
    floor: "max(weights / disk bandwidth, warm run)",
  },
};

/** The models issue 3 names for its targets (others are reported against the same targets, for reference). */
export const TARGET_MODELS = ["resnet50", "vgg16", "opt-1.3b"] as const;

/** Issue 3's other targets. */
export const TARGETS = {
  /** Pipeline utilisation of cicada (fraction). */
  cicadaUtilization: 0.98,
  /** Every strategy's outputs (and stage outputs) against eager's. */
  cosine: 0.99999,
} as const;

/** The strategies whose latency the ablation compares, in the paper's order. */
export const ABLATION: readonly StrategyName[] = ["pisel", "mini", "preload", "cicada"];

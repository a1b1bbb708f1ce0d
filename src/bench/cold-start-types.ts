// What the cold-start benchmark is asked (targets, scenario, cache state, options) and what it reports:
// the per-strategy figures and the per-model summary (`cicada bench --json`), and the raw data of every
// cold start that reports and charts are drawn from (`--out DIR`). Types and the scenario names only.
import type { Hazard, StrategyName } from "../config.js";
import type { Unit, UnitTimes } from "../metrics/trace.js";
import type { PlanName } from "../runtime/load-model.js";
import type { ColdStartReport } from "./fresh-instance.js";
import type { Machine } from "../metrics/machine.js";
import type { DiskBandwidth, EvictionCheck, Residency } from "./page-cache.js";

export type Scenario = "reload" | "fresh";
export type CacheState = "warm" | "cold";
export const SCENARIOS: readonly Scenario[] = ["reload", "fresh"];
export const CACHE_STATES: readonly CacheState[] = ["warm", "cold"];

/** A model to benchmark: a display name and its bundle. */
export interface BenchTarget {
  name: string;
  bundleDir: string;
}

/** Options of benchModels (cold-start.ts). */
export interface BenchOptions {
  strategies: StrategyName[];
  /** Counted rounds (a warm-up round comes first). */
  repeat: number;
  scenario: Scenario;
  cache: CacheState;
  /** Seed of the random example inputs (the same inputs for every cold start). */
  seed?: number;
  /** cicada's plan (LoadOptions.plan; default auto). */
  plan?: "auto" | PlanName;
  /** The hazard rule of the pipelines (LoadOptions.hazard; default strict). */
  hazard?: Hazard;
  /**
   * Every cold start's memory budget (LoadOptions.memoryBudgetBytes); a strategy refused under it
   * (E_MEMORY_BUDGET) is listed in the summary's `refused` and not run again.
   */
  memoryBudgetBytes?: number;
  /** Memory samples kept per cold start in the raw data (the peak uses all). */
  maxSamples?: number;
  /** One line per event worth telling (a cold start done, a setup step). */
  onProgress?: (line: string) => void;
}

/** One strategy's figures over the counted repeats (medians unless named otherwise). */
export interface StrategyResult {
  strategy: StrategyName;
  latencyMedianMs: number;
  latencyP10Ms: number;
  latencyP90Ms: number;
  utilization: number;
  /** Peak process RSS during the cold start (and its private and file-backed parts, each its own peak). */
  peakRssBytes: number;
  peakRssAnonBytes: number;
  peakRssFileBytes: number;
  /** RSS when the request arrived: the instance's memory before the model. */
  baselineRssBytes: number;
  peakArrayBuffersBytes: number;
  minorFaults: number;
  majorFaults: number;
  cpuMs: number;
  /** The worst cosine vs eager over every output of every cold start, warm-up included. */
  cosineMin: number;
  /**
   * Per stage, the worst cosine of its outputs vs eager's same tensors over every cold start; null where
   * the strategy has no such stage (a whole-model strategy yields only the last stage's, the graph outputs).
   */
  stageCosineMin: (number | null)[];
  units: Record<Unit, UnitTimes>;
  /** How many counted cold starts used each plan. */
  plans: Partial<Record<PlanName, number>>;
}

/** The eviction checks of a cold-cache run. */
export interface EvictionSummary {
  checks: number;
  /** Checks whose probe read was not clearly slower than from the page cache. */
  failed: number;
  coldProbeMedianBytesPerS: number;
  warmProbeMedianBytesPerS: number;
}

/** What fraction of its files each cold start found in the page cache. */
export interface PageCacheSummary {
  residentFractionMin: number;
  residentFractionMax: number;
}

/** The summary of one model (what `--json` prints). */
export interface BenchSummary {
  model: string;
  bundle: string;
  scenario: Scenario;
  cache: CacheState;
  repeat: number;
  stages: number;
  /** Median warm run of eager on a loaded model: the floor a cold start cannot beat. */
  warmRunMedianMs: number;
  /** Set when the floor is another strategy's warm run (eager cannot hold a model larger than memory). */
  floorStrategy?: StrategyName;
  /**
   * Set when the outputs were checked against the sequential reference runner on the bundle (stage by
   * stage) instead of eager on the original model (gone, or larger than memory).
   */
  referenceRunner?: "sequential";
  diskBandwidthBytesPerS: number;
  diskBandwidthMethod: DiskBandwidth["method"];
  weightBytes: number;
  machine: Machine;
  eviction?: EvictionSummary;
  /** Share of each cold start's files in the page cache just before it (fincore), where measurable. */
  pageCache?: PageCacheSummary;
  /** The memory budget every cold start ran under, when one was given. */
  memoryBudgetBytes?: number;
  /** The hazard rule the pipelines were loaded by, when one was given. */
  hazard?: Hazard;
  results: StrategyResult[];
  /** Strategies refused before allocating (E_MEMORY_BUDGET), with the runtime's message. */
  refused?: { strategy: StrategyName; message: string }[];
}

/** One cold start as the raw data keeps it. */
export interface RawColdStart {
  round: number;
  warmUp: boolean;
  /** Position in the round's (rotated) order. */
  position: number;
  eviction?: EvictionCheck;
  /** The strategy's files in the page cache just before the cold start. */
  residency?: Residency;
  report: ColdStartReport;
}

/** Everything measured on one model: for reports and charts (issue 4). */
export interface BenchRaw {
  model: string;
  bundle: string;
  scenario: Scenario;
  cache: CacheState;
  strategies: StrategyName[];
  /** Files each strategy's cold start reads (evicted when the cache is cold). */
  files: Partial<Record<StrategyName, string[]>>;
  warmRunsMs: number[];
  diskBandwidth: DiskBandwidth;
  coldStarts: RawColdStart[];
}

// The cold-start benchmark's result summary: one strategy's figures over its counted cold starts (medians,
// p10/p90, the worst cosines over every cold start, warm-up included), the eviction checks of a cold-cache
// run and the page-cache share each cold start found. Pure functions of the raw data, so reports and tests
// summarise synthetic runs the same way.
import type { StrategyName } from "../config.js";
import { UNITS, unitTimes, utilization, type Unit, type UnitTimes } from "../metrics/trace.js";
import type { PlanName } from "../runtime/load-model.js";
import type { EvictionSummary, PageCacheSummary, RawColdStart, StrategyResult } from "./cold-start-types.js";
import type { ColdStartReport, StageCheck } from "./fresh-instance.js";
import { median, quantile } from "../metrics/stats.js";

/** Median of each unit's work and wait over several traces' unit times. */
function medianUnits(all: Record<Unit, UnitTimes>[]): Record<Unit, UnitTimes> {
  return Object.fromEntries(
    UNITS.map((u) => [
      u,
      { workMs: median(all.map((a) => a[u].workMs)), waitMs: median(all.map((a) => a[u].waitMs)) },
    ]),
  ) as Record<Unit, UnitTimes>;
}

/** The worst cosine per stage index (null for a stage never checked). */
function worstPerStage(checks: readonly StageCheck[]): (number | null)[] {
  const worst: (number | null)[] = [];
  for (const c of checks) {
    while (worst.length <= c.stage) worst.push(null);
    worst[c.stage] = Math.min(worst[c.stage] ?? Infinity, c.cosine);
  }
  return worst;
}

/** Summarises one strategy's cold starts: counted ones for figures, every one for correctness. */
export function summarizeStrategy(strategy: StrategyName, runs: readonly RawColdStart[]): StrategyResult {
  const all = runs.filter((r) => r.report.strategy === strategy);
  const counted = all.filter((r) => !r.warmUp).map((r) => r.report);
  const m = (f: (r: ColdStartReport) => number) => median(counted.map(f));
  const latencies = counted.map((r) => r.latencyMs);
  return {
    strategy,
    latencyMedianMs: median(latencies),
    latencyP10Ms: quantile(latencies, 0.1),
    latencyP90Ms: quantile(latencies, 0.9),
    utilization: m((r) => utilization(r.trace)),
    peakRssBytes: m((r) => r.memory.peak.rssBytes),
    peakRssAnonBytes: m((r) => r.memory.peak.rssAnonBytes),
    peakRssFileBytes: m((r) => r.memory.peak.rssFileBytes),
    baselineRssBytes: m((r) => r.memory.baseline.rssBytes),
    peakArrayBuffersBytes: m((r) => r.memory.peakArrayBuffersBytes),
    minorFaults: m((r) => r.minorFaults),
    majorFaults: m((r) => r.majorFaults),
    cpuMs: m((r) => r.cpuMs),
    cosineMin: Math.min(...all.map((r) => r.report.cosineMin)),
    stageCosineMin: worstPerStage(all.flatMap((r) => r.report.stageCosines)),
    units: medianUnits(counted.map((r) => unitTimes(r.trace))),
    plans: counted.reduce<Partial<Record<PlanName, number>>>(
      (n, r) => ({ ...n, [r.plan]: (n[r.plan] ?? 0) + 1 }),
      {},
    ),
  };
}

/** Summarises the eviction checks (undefined when there were none). */
export function summarizeEviction(runs: readonly RawColdStart[]): EvictionSummary | undefined {
  const checks = runs.flatMap((r) => (r.eviction ? [r.eviction] : []));
  if (checks.length === 0) return undefined;
  return {
    checks: checks.length,
    failed: checks.filter((c) => !c.evicted).length,
    coldProbeMedianBytesPerS: median(checks.map((c) => c.coldBytesPerS)),
    warmProbeMedianBytesPerS: median(checks.map((c) => c.warmBytesPerS)),
  };
}

/** The page-cache share of every cold start (undefined when fincore could not tell). */
export function summarizePageCache(runs: readonly RawColdStart[]): PageCacheSummary | undefined {
  const fractions = runs.flatMap((r) =>
    r.residency?.residentBytes !== undefined && r.residency.bytes > 0
      ? [r.residency.residentBytes / r.residency.bytes]
      : [],
  );
  if (fractions.length === 0) return undefined;
  return { residentFractionMin: Math.min(...fractions), residentFractionMax: Math.max(...fractions) };
}

// How the harness summarises cold starts (no instances, no onnxruntime): medians over the counted rounds,
// the warm-up excluded from figures but not from the correctness check, and the eviction checks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { summarizeEviction, summarizeStrategy } from "../../src/bench/cold-start-summary.js";
import type { RawColdStart } from "../../src/bench/cold-start-types.js";
import type { ColdStartReport } from "../../src/bench/fresh-instance.js";
import { unitTimes } from "../../src/metrics/trace.js";
import type { StrategyName } from "../../src/config.js";

const status = (rss: number) => ({ rssBytes: rss, rssAnonBytes: rss / 2, rssFileBytes: rss / 2 });

function coldStart(strategy: StrategyName, round: number, latencyMs: number, cosine = 1): RawColdStart {
  // Two stages: L0 [0,10], E0 [10,20]; L1 [10,30] with a gap before E1 [40,50] (utilisation 40/50).
  const events = [
    { unit: "L" as const, stage: 0, worker: "worker-0", start: 0, end: 10, bytes: 0 },
    { unit: "E" as const, stage: 0, worker: "worker-0", start: 10, end: 20, bytes: 0 },
    { unit: "L" as const, stage: 1, worker: "worker-1", start: 10, end: 30, bytes: 0 },
    { unit: "E" as const, stage: 1, worker: "worker-1", start: 40, end: 50, bytes: 0 },
  ];
  const report: ColdStartReport = {
    strategy,
    plan: strategy === "eager" || strategy === "ort-best" ? "whole" : "pipeline",
    latencyMs,
    trace: { requestStart: 0, requestEnd: 50, events },
    outputs: [{ name: "y", dtype: "float32", dims: [1], cosine, maxAbsDiff: 0 }],
    cosineMin: cosine,
    stageCosines: [
      { stage: 0, tensor: "h", cosine: 1 - round / 1000, maxAbsDiff: 0 },
      { stage: 1, tensor: "y", cosine, maxAbsDiff: 0 },
    ],
    minorFaults: latencyMs * 10,
    majorFaults: 0,
    cpuMs: latencyMs,
    memory: {
      baseline: status(100),
      peak: status(100 + latencyMs),
      peakArrayBuffersBytes: 7,
      baselineArrayBuffersBytes: 1,
      intervalMs: 1,
      samples: [],
      arrayBuffers: [],
    },
    previousColdStarts: round,
  };
  return { round, warmUp: round === 0, position: 0, report };
}

test("summarizeStrategy: medians over counted rounds, warm-up only in the correctness check", () => {
  const runs = [
    coldStart("cicada", 0, 1000, 0.5),
    coldStart("cicada", 1, 30),
    coldStart("cicada", 2, 10),
    coldStart("cicada", 3, 20),
    coldStart("eager", 1, 99),
  ];
  const r = summarizeStrategy("cicada", runs);
  assert.equal(r.strategy, "cicada");
  assert.equal(r.latencyMedianMs, 20);
  assert.ok(Math.abs(r.latencyP10Ms - 12) < 1e-9);
  assert.ok(Math.abs(r.latencyP90Ms - 28) < 1e-9);
  assert.equal(r.peakRssBytes, 120);
  assert.equal(r.peakRssAnonBytes, 60);
  assert.equal(r.baselineRssBytes, 100);
  assert.equal(r.minorFaults, 200);
  assert.equal(r.cosineMin, 0.5, "the warm-up's wrong output is not hidden");
  assert.deepEqual(r.stageCosineMin, [0.997, 0.5], "the worst of each stage over every cold start");
  assert.ok(Math.abs(r.utilization - 0.8) < 1e-12);
  // Every counted run has the same trace, so the medians are that trace's unit times.
  assert.deepEqual(r.units, unitTimes(runs[1]!.report.trace));
  assert.equal(r.units.L.workMs, 30);
  assert.equal(r.units.E.workMs, 20);
});

test("summarizeEviction counts failed checks and takes medians; none without checks", () => {
  const runs = [1, 2, 3].map((i) => ({
    ...coldStart("eager", i, 10),
    eviction: { path: "/f", coldBytesPerS: i * 1e8, warmBytesPerS: 3e9, evicted: i !== 3 },
  }));
  assert.deepEqual(summarizeEviction(runs), {
    checks: 3,
    failed: 1,
    coldProbeMedianBytesPerS: 2e8,
    warmProbeMedianBytesPerS: 3e9,
  });
  assert.equal(summarizeEviction([coldStart("eager", 1, 10)]), undefined);
});

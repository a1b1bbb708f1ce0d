// Synthetic benchmark data for the report tests: cold starts with traces, memory series and stage cosines
// shaped like `cicada bench` writes them, summarised by the benchmark's own summarizeStrategy, so reports
// are tested on the real types without running onnxruntime.
import { summarizeStrategy } from "../../src/bench/cold-start-summary.js";
import type {
  BenchRaw,
  BenchSummary,
  RawColdStart,
  Scenario,
  CacheState,
} from "../../src/bench/cold-start-types.js";
import type { ColdStartReport } from "../../src/bench/fresh-instance.js";
import type { TraceEvent } from "../../src/metrics/trace.js";
import type { StrategyName } from "../../src/config.js";

const MiB = 2 ** 20;

/** Base latency of each strategy in ms (× the model's scale): cicada fastest, pisel the slowest staged one. */
export const BASE_MS: Record<StrategyName, number> = {
  eager: 200,
  "ort-best": 120,
  pisel: 180,
  mini: 130,
  preload: 150,
  cicada: 100,
};

function coldStart(strategy: StrategyName, round: number, stages: number, scale: number): RawColdStart {
  // Latencies vary by round (±10 %) so that medians and spreads are not trivially equal.
  const latencyMs = BASE_MS[strategy] * scale * (1 + 0.05 * (((round * 7) % 5) - 2));
  const t0 = 1_000_000 + round * 10_000;
  const staged = !["eager", "ort-best"].includes(strategy);
  const events: TraceEvent[] = [];
  const n = staged ? stages : 1;
  const slot = (latencyMs - 2) / (n + 1);
  for (let i = 0; i < n; i++) {
    const start = t0 + 1 + i * slot;
    events.push({ unit: "L", stage: i, worker: `worker-${i % 2}`, start, end: start + slot * 0.8, bytes: 0 });
    if (strategy === "preload" || strategy === "cicada") {
      events.push({ unit: "R", stage: i, worker: "main", start, end: start + slot * 0.5, bytes: 4 * MiB });
      events.push({
        unit: "A",
        stage: i,
        worker: `worker-${i % 2}`,
        start: start + slot * 0.8,
        end: start + slot * 0.95,
        bytes: 4 * MiB,
      });
    }
    events.push({
      unit: "E",
      stage: i,
      worker: `worker-${i % 2}`,
      start: start + slot,
      end: start + slot * 2,
      bytes: 0,
    });
  }
  const cosine = 1 - (staged ? 1e-12 * (round + 1) : 0);
  const rss = (BASE_MS[strategy] + 100) * MiB;
  const samples: [number, number, number, number][] = Array.from({ length: 50 }, (_, k) => {
    const r = 150 * MiB + (rss - 150 * MiB) * Math.sin((k / 49) * Math.PI * 0.5);
    return [t0 - 0.5 + (k / 49) * latencyMs, r, r * 0.6, r * 0.4];
  });
  const report: ColdStartReport = {
    strategy,
    plan: strategy === "eager" || strategy === "ort-best" ? "whole" : "pipeline",
    latencyMs,
    trace: { requestStart: t0, requestEnd: t0 + latencyMs - 1, events },
    outputs: [{ name: "logits", dtype: "float32", dims: [1, 10], cosine, maxAbsDiff: 1e-6 }],
    cosineMin: cosine,
    stageCosines: Array.from({ length: stages }, (_, i) => i)
      .filter((i) => staged || i === stages - 1)
      .map((i) => ({ stage: i, tensor: `t${i}`, cosine: 1 - (staged ? 1e-13 * (i + 1) : 0), maxAbsDiff: 0 })),
    minorFaults: Math.round(BASE_MS[strategy] * 40),
    majorFaults: 0,
    cpuMs: latencyMs * 1.5,
    memory: {
      baseline: { rssBytes: 150 * MiB, rssAnonBytes: 90 * MiB, rssFileBytes: 60 * MiB },
      peak: { rssBytes: rss, rssAnonBytes: rss * 0.6, rssFileBytes: rss * 0.4 },
      peakArrayBuffersBytes: MiB,
      baselineArrayBuffersBytes: 0,
      intervalMs: 1,
      samples,
      arrayBuffers: [],
    },
    previousColdStarts: round,
  };
  return { round, warmUp: round === 0, position: 0, report };
}

/** Options of {@link syntheticRun}. */
export interface SyntheticOptions {
  model: string;
  scenario?: Scenario;
  cache?: CacheState;
  strategies?: StrategyName[];
  stages?: number;
  repeat?: number;
  /** Multiplies every latency. */
  scale?: number;
}

/** A bench summary and its raw data, as `cicada bench --out` would write them. */
export function syntheticRun(o: SyntheticOptions): { summary: BenchSummary; raw: BenchRaw } {
  const strategies = o.strategies ?? ["eager", "ort-best", "pisel", "mini", "preload", "cicada"];
  const stages = o.stages ?? 3;
  const repeat = o.repeat ?? 5;
  const scenario = o.scenario ?? "reload";
  const cache = o.cache ?? "warm";
  const coldStarts: RawColdStart[] = [];
  for (let round = 0; round <= repeat; round++) {
    for (const s of strategies) coldStarts.push(coldStart(s, round, stages, o.scale ?? 1));
  }
  const summary: BenchSummary = {
    model: o.model,
    bundle: `/tmp/bundles/${o.model}`,
    scenario,
    cache,
    repeat,
    stages,
    warmRunMedianMs: 40 * (o.scale ?? 1),
    diskBandwidthBytesPerS: 1e9,
    diskBandwidthMethod: "O_DIRECT",
    weightBytes: 100 * MiB,
    machine: {
      cpuModel: "Test CPU <fast & cheap>",
      cores: 2,
      cpuFeatures: ["avx2"],
      virtualized: true,
      totalMemoryBytes: 8 * 2 ** 30,
      platform: "linux",
      arch: "x64",
      kernel: "6.0.0",
      nodeVersion: "20.0.0",
      ortVersion: "1.30.0",
      transparentHugePages: "madvise",
      glibcTunables: null,
      loadAverage1m: 0.5,
    },
    results: strategies.map((s) => summarizeStrategy(s, coldStarts)),
  };
  const raw: BenchRaw = {
    model: o.model,
    bundle: summary.bundle,
    scenario,
    cache,
    strategies,
    files: {},
    warmRunsMs: [40, 41, 39],
    diskBandwidth: { path: "/tmp/w", bytes: 1e8, bytesPerS: 1e9, method: "O_DIRECT" },
    coldStarts,
  };
  return { summary, raw };
}

// The cold-start benchmark (issue 3): every strategy side by side on one model, interleaved, repeated,
// in the scenario and cache state the user names. Instances are child processes (fresh-instance.ts, driven
// through instance-process.ts):
// - reload: one long-lived instance per strategy. A process per strategy rather than one Runtime per
//   strategy in one process, because a serverless instance IS a process: its RSS, page faults and heap
//   (and the garbage a strategy leaves) are then that strategy's alone, and the harness's own work never
//   shares an event loop with the request being timed. Each request is loadModel + run + dispose.
// - fresh: a new instance per cold start; its runtime is up (onnxruntime imported, workers started) before
//   the clock starts, as on a platform that starts the instance and then routes the request.
// Everything a strategy needs on disk is prepared before any timing; each model gets one warm-up round
// (not counted), then `repeat` rounds in rotated order. With `--cache cold`, the files the strategy will
// read are evicted before each of its cold starts and the eviction is checked with a probe read; with
// `--cache warm` they are read into the page cache first (large models' files do not all fit at once).
// Either way fincore records how much of them the page cache held when the cold start began. The results'
// types are in cold-start-types.ts, their summary in cold-start-summary.ts.
import { mkdtemp, rm } from "node:fs/promises";
import { readFileSync, statSync } from "node:fs";
import { tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import type { StrategyName } from "../config.js";
import { CicadaError, isCicadaError } from "../errors.js";
import { openBundle } from "../format/bundle.js";
import { summarizeEviction, summarizePageCache, summarizeStrategy } from "./cold-start-summary.js";
import type { BenchOptions, BenchRaw, BenchSummary, BenchTarget, RawColdStart } from "./cold-start-types.js";
import {
  Instance,
  scenarioInstances,
  type ScenarioInstances,
  type WithInstance,
} from "./instance-process.js";
import { describeMachine } from "../metrics/machine.js";
import {
  evictFiles,
  largestFile,
  makeResident,
  measureDiskBandwidth,
  residencyOf,
  verifyEviction,
  type EvictionCheck,
} from "./page-cache.js";
import { median, rotation } from "../metrics/stats.js";

/** Weight bytes of a bundle's stages. */
function weightBytesOf(stages: { weights: { length: number } }[]): number {
  return stages.reduce((n, s) => n + s.weights.length, 0);
}

/** Bytes the kernel could give the page cache now (MemAvailable), or the total memory where unknown. */
function availableMemoryBytes(): number {
  try {
    const kib = /MemAvailable:\s+(\d+) kB/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1];
    if (kib) return Number(kib) * 1024;
  } catch {
    // Not Linux: fall through.
  }
  return totalmem();
}

/**
 * Benchmarks one model: prepares every strategy's files and eager's reference outside any clock, then a
 * warm-up round and `repeat` counted rounds of cold starts in rotated order, each in the cache state asked.
 */
async function benchOne(
  target: BenchTarget,
  options: BenchOptions,
  withInstance: WithInstance,
  referencePath: string,
): Promise<{ summary: BenchSummary; raw: BenchRaw }> {
  const say = options.onProgress ?? (() => {});
  const seed = options.seed ?? 0;
  const bundle = await openBundle(target.bundleDir);
  const { strategies, repeat, scenario, cache } = options;
  const label = `${target.name} ${scenario}/${cache}`;

  // Outside any clock: derived forms of every strategy, eager's outputs, eager's warm run, disk bandwidth.
  say(`${label}: preparing ${strategies.join(", ")}`);
  const setup = await Instance.spawn();
  let files: Partial<Record<StrategyName, string[]>>;
  let warmRunsMs: number[];
  let floorStrategy: StrategyName;
  let referenceRunner: "eager" | "sequential";
  try {
    ({ files } = await setup.request<"prepare">({
      kind: "prepare",
      bundleDir: target.bundleDir,
      strategies,
      plan: options.plan ?? "auto",
    }));
    ({ runner: referenceRunner } = await setup.request<"reference">({
      kind: "reference",
      bundleDir: target.bundleDir,
      seed,
      path: referencePath,
    }));
    ({ ms: warmRunsMs, strategy: floorStrategy } = await setup.request<"warm-runs">({
      kind: "warm-runs",
      bundleDir: target.bundleDir,
      seed,
      runs: Math.max(5, repeat),
    }));
  } finally {
    await setup.close();
  }
  const machine = describeMachine(setup.ortVersion);
  const allFiles = [...new Set(Object.values(files).flat())];
  const allBytes = allFiles.reduce((n, f) => n + statSync(f).size, 0);
  const diskBandwidth = await measureDiskBandwidth(largestFile([bundle.weightsPath, ...allFiles]));
  say(
    `${label}: reference outputs from ${referenceRunner}; warm run of ${floorStrategy} ${median(warmRunsMs).toFixed(1)} ms; disk ${(diskBandwidth.bytesPerS / 1e9).toFixed(2)} GB/s (${diskBandwidth.method})`,
  );

  const coldStarts: RawColdStart[] = [];
  const refused = new Map<StrategyName, string>();
  for (let round = 0; round <= repeat; round++) {
    const order = rotation(strategies, round);
    for (const [position, strategy] of order.entries()) {
      if (refused.has(strategy)) continue;
      const run = await withInstance(strategy, async (instance) => {
        let eviction: EvictionCheck | undefined;
        const mine = files[strategy] ?? [];
        if (cache === "cold") {
          await evictFiles(mine);
          eviction = await verifyEviction(largestFile(mine));
        } else {
          // Warm means warm: with large models the strategies' files together exceed the memory, and pages
          // read once are the first the kernel reclaims (measured: opt-1.3b's files 42-91 % resident right
          // after reading them), so the other strategies' files leave the page cache first.
          if (allBytes > availableMemoryBytes() / 2)
            await evictFiles(allFiles.filter((f) => !mine.includes(f)));
          await makeResident(mine, availableMemoryBytes());
        }
        const residency = await residencyOf(mine);
        const report = await instance.request<"cold-start">({
          kind: "cold-start",
          bundleDir: target.bundleDir,
          strategy,
          seed,
          plan: options.plan ?? "auto",
          ...(options.hazard ? { hazard: options.hazard } : {}),
          ...(options.memoryBudgetBytes ? { memoryBudgetBytes: options.memoryBudgetBytes } : {}),
          referencePath,
          maxSamples: options.maxSamples ?? 1000,
        });
        return {
          round,
          warmUp: round === 0,
          position,
          ...(eviction ? { eviction } : {}),
          residency,
          report,
        };
      }).catch((e: unknown) => {
        // Refused before allocating: shown as refused, not run again.
        if (!isCicadaError(e, "E_MEMORY_BUDGET")) throw e;
        refused.set(strategy, e.message);
        say(`${label} ${strategy}: refused (${e.message})`);
        return undefined;
      });
      if (!run) continue;
      coldStarts.push(run);
      const r = run.report;
      say(
        `${label} ${round === 0 ? "warm-up" : `round ${round}/${repeat}`} ${strategy}: ${r.latencyMs.toFixed(1)} ms, peak RSS ${(r.memory.peak.rssBytes / 2 ** 20).toFixed(0)} MiB, cosine ${r.cosineMin.toFixed(6)}${run.eviction ? `, probe ${(run.eviction.coldBytesPerS / 1e9).toFixed(2)} GB/s cold vs ${(run.eviction.warmBytesPerS / 1e9).toFixed(2)} warm` : ""}`,
      );
    }
  }

  const eviction = summarizeEviction(coldStarts);
  const pageCache = summarizePageCache(coldStarts);
  const summary: BenchSummary = {
    model: target.name,
    bundle: target.bundleDir,
    scenario,
    cache,
    repeat,
    stages: bundle.manifest.stages.length,
    warmRunMedianMs: median(warmRunsMs),
    ...(floorStrategy !== "eager" ? { floorStrategy } : {}),
    ...(referenceRunner !== "eager" ? { referenceRunner } : {}),
    diskBandwidthBytesPerS: diskBandwidth.bytesPerS,
    diskBandwidthMethod: diskBandwidth.method,
    weightBytes: weightBytesOf(bundle.manifest.stages),
    machine,
    ...(eviction ? { eviction } : {}),
    ...(pageCache ? { pageCache } : {}),
    ...(options.memoryBudgetBytes ? { memoryBudgetBytes: options.memoryBudgetBytes } : {}),
    ...(options.hazard ? { hazard: options.hazard } : {}),
    results: strategies.filter((s) => !refused.has(s)).map((s) => summarizeStrategy(s, coldStarts)),
    ...(refused.size ? { refused: [...refused].map(([strategy, message]) => ({ strategy, message })) } : {}),
  };
  const raw: BenchRaw = {
    model: target.name,
    bundle: target.bundleDir,
    scenario,
    cache,
    strategies,
    files,
    warmRunsMs,
    diskBandwidth,
    coldStarts,
  };
  return { summary, raw };
}

/** Benchmarks every target in turn; instances of the reload scenario serve all of them. */
export async function benchModels(
  targets: readonly BenchTarget[],
  options: BenchOptions,
): Promise<{ summaries: BenchSummary[]; raws: BenchRaw[] }> {
  if (options.strategies.length === 0) throw new CicadaError("E_USAGE", "bench: no strategy to measure");
  if (!Number.isInteger(options.repeat) || options.repeat < 1)
    throw new CicadaError("E_USAGE", `bench: repeat must be an integer >= 1, found ${options.repeat}`);
  const scratch = await mkdtemp(join(tmpdir(), "cicada-bench-"));
  let instances: ScenarioInstances | undefined;
  try {
    instances = await scenarioInstances(options.scenario, options.strategies, options.onProgress);
    const summaries: BenchSummary[] = [];
    const raws: BenchRaw[] = [];
    for (const [i, target] of targets.entries()) {
      const reference = join(scratch, `${i}.reference`);
      const { summary, raw } = await benchOne(target, options, instances.withInstance, reference);
      summaries.push(summary);
      raws.push(raw);
    }
    return { summaries, raws };
  } finally {
    await instances?.close();
    await rm(scratch, { recursive: true, force: true });
  }
}

// The cold-start benchmark (issue 3): every strategy side by side on one model, interleaved, repeated,
// in the scenario and cache state the user names. Instances are child processes (fresh-instance.ts):
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
// Either way fincore records how much of them the page cache held when the cold start began.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { readFileSync, statSync } from "node:fs";
import { tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CicadaError, ERROR_CODES, type ErrorCode } from "../errors.js";
import { openBundle } from "../format/bundle.js";
import { UNITS, unitTimes, utilization, type Unit, type UnitTimes } from "../metrics/trace.js";
import type { PlanName } from "../runtime/load-model.js";
import type { StrategyName } from "../config.js";
import type {
  ColdStartReport,
  InstanceEnvelope,
  InstanceMessage,
  InstanceRequest,
  InstanceResults,
  StageCheck,
} from "./fresh-instance.js";
import { describeMachine, type Machine } from "../metrics/machine.js";
import {
  evictFiles,
  largestFile,
  makeResident,
  measureDiskBandwidth,
  residencyOf,
  verifyEviction,
  type DiskBandwidth,
  type EvictionCheck,
  type Residency,
} from "./page-cache.js";
import { median, quantile, rotation } from "../metrics/stats.js";
import { loaderArgs, ownModule } from "../util/own-entry.js";

export type Scenario = "reload" | "fresh";
export type CacheState = "warm" | "cold";
export const SCENARIOS: readonly Scenario[] = ["reload", "fresh"];
export const CACHE_STATES: readonly CacheState[] = ["warm", "cold"];

/** A model to benchmark: a display name and its bundle. */
export interface BenchTarget {
  name: string;
  bundleDir: string;
}

/** Options of {@link benchModels}. */
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
  diskBandwidthBytesPerS: number;
  diskBandwidthMethod: DiskBandwidth["method"];
  weightBytes: number;
  machine: Machine;
  eviction?: EvictionSummary;
  /** Share of each cold start's files in the page cache just before it (fincore), where measurable. */
  pageCache?: PageCacheSummary;
  results: StrategyResult[];
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

const ENTRY = ownModule("bench/fresh-instance");

/** A running instance process and its request channel. */
export class Instance {
  /** The instance's pid and onnxruntime version, once it is ready. */
  pid = 0;
  ortVersion = "";
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void }>();
  private stderrTail = "";
  private exited = false;
  private readonly ready: Promise<void>;

  private constructor(private readonly child: ChildProcess) {
    child.stderr!.on(
      "data",
      (d: Buffer) => (this.stderrTail = (this.stderrTail + d.toString()).slice(-4000)),
    );
    this.ready = new Promise<void>((resolve, reject) => {
      child.on("message", (m: InstanceMessage) => {
        if (m.kind === "ready") {
          this.pid = m.pid;
          this.ortVersion = m.ortVersion;
          resolve();
          return;
        }
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.ok) p.resolve(m.result);
        else {
          const code: ErrorCode = m.error.code && m.error.code in ERROR_CODES ? m.error.code : "E_RUNTIME";
          p.reject(new CicadaError(code, m.error.message));
        }
      });
      child.once("error", reject);
      child.once("exit", (code, signal) => {
        this.exited = true;
        const error = new CicadaError(
          "E_RUNTIME",
          `a benchmark instance (pid ${child.pid}) exited (${signal ?? `code ${code}`}); its stderr ended with:\n${this.stderrTail}`,
        );
        reject(error);
        for (const p of this.pending.values()) p.reject(error);
        this.pending.clear();
      });
    });
  }

  /** Starts an instance and waits until its runtime is up (the cost of a platform starting it). */
  static async spawn(): Promise<Instance> {
    // The instance runs its TypeScript through tsx's loader when the harness itself does.
    const child = spawn(process.execPath, [...loaderArgs(), "--expose-gc", fileURLToPath(ENTRY)], {
      stdio: ["ignore", "ignore", "pipe", "ipc"],
      serialization: "advanced",
    });
    const instance = new Instance(child);
    await instance.ready;
    return instance;
  }

  /** Sends one request and waits for its result. */
  request<K extends InstanceRequest["kind"]>(
    request: Extract<InstanceRequest, { kind: K }>,
  ): Promise<InstanceResults[K]> {
    if (this.exited) {
      return Promise.reject(new CicadaError("E_RUNTIME", `benchmark instance ${this.pid} has exited`));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (r: unknown) => void, reject });
      const envelope: InstanceEnvelope = { id, request };
      this.child.send(envelope);
    });
  }

  /** Lets the instance finish and exit (it closes its runtime on disconnect); kills it after 10 s. */
  async close(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    this.child.disconnect();
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

/** Starts one instance per strategy, all at once (outside any clock); none is left running on failure. */
async function spawnInstances(strategies: readonly StrategyName[]): Promise<Map<StrategyName, Instance>> {
  const started = await Promise.allSettled(strategies.map(() => Instance.spawn()));
  const failed = started.find((s) => s.status === "rejected");
  if (failed) {
    await Promise.all(started.flatMap((s) => (s.status === "fulfilled" ? [s.value.close()] : [])));
    throw failed.reason;
  }
  return new Map(strategies.map((s, i) => [s, (started[i] as PromiseFulfilledResult<Instance>).value]));
}

function weightBytesOf(stages: { weights: { length: number } }[]): number {
  return stages.reduce((n, s) => n + s.weights.length, 0);
}

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

/** Runs `work` with an instance: the long-lived one (reload) or a new one closed afterwards (fresh). */
type WithInstance = <T>(strategy: StrategyName, work: (instance: Instance) => Promise<T>) => Promise<T>;

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
  try {
    ({ files } = await setup.request<"prepare">({
      kind: "prepare",
      bundleDir: target.bundleDir,
      strategies,
      plan: options.plan ?? "auto",
    }));
    await setup.request<"reference">({
      kind: "reference",
      bundleDir: target.bundleDir,
      seed,
      path: referencePath,
    });
    ({ ms: warmRunsMs } = await setup.request<"warm-runs">({
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
    `${label}: warm run of eager ${median(warmRunsMs).toFixed(1)} ms; disk ${(diskBandwidth.bytesPerS / 1e9).toFixed(2)} GB/s (${diskBandwidth.method})`,
  );

  const coldStarts: RawColdStart[] = [];
  for (let round = 0; round <= repeat; round++) {
    const order = rotation(strategies, round);
    for (const [position, strategy] of order.entries()) {
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
      });
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
    diskBandwidthBytesPerS: diskBandwidth.bytesPerS,
    diskBandwidthMethod: diskBandwidth.method,
    weightBytes: weightBytesOf(bundle.manifest.stages),
    machine,
    ...(eviction ? { eviction } : {}),
    ...(pageCache ? { pageCache } : {}),
    results: strategies.map((s) => summarizeStrategy(s, coldStarts)),
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
  let instances = new Map<StrategyName, Instance>();
  try {
    let withInstance: WithInstance;
    if (options.scenario === "reload") {
      options.onProgress?.(`starting ${options.strategies.length} instances (one per strategy)`);
      instances = await spawnInstances(options.strategies);
      withInstance = (s, work) => work(instances.get(s)!);
    } else {
      withInstance = async (_s, work) => {
        const instance = await Instance.spawn();
        try {
          return await work(instance);
        } finally {
          await instance.close();
        }
      };
    }
    const summaries: BenchSummary[] = [];
    const raws: BenchRaw[] = [];
    for (const [i, target] of targets.entries()) {
      const reference = join(scratch, `${i}.reference`);
      const { summary, raw } = await benchOne(target, options, withInstance, reference);
      summaries.push(summary);
      raws.push(raw);
    }
    return { summaries, raws };
  } finally {
    await Promise.all([...instances.values()].map((i) => i.close()));
    await rm(scratch, { recursive: true, force: true });
  }
}

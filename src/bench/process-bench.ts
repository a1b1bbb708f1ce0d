// `cicada bench --scenario process`: the cold start a serverless function really pays. Each cold start is a
// new `node` process running a handler file (process-handlers.ts) that imports its runtime, loads the
// model, answers one request, writes the outputs and exits; it is timed from spawn to its first output
// and to its exit, and the handler's own timestamps split that into node start, inputs, import, runtime
// start, load and first run. In the same harness, interleaved round by round in rotated order: cicada's
// strategies through the package's public API, and plain onnxruntime-node scripts for eager and ort-best
// that use no project code. Weights are in the page cache (`warm`) or evicted (`cold`) before each cold
// start; every output is compared with a reference run of the eager script.
// NOTE: the node binary, onnxruntime's shared library and the JavaScript of every contestant stay in the
// page cache in both settings: `cold` evicts the model files only.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { totalmem } from "node:os";
import { join } from "node:path";
import { CicadaError } from "../errors.js";
import { openBundle } from "../format/bundle.js";
import { compareTensors } from "../metrics/similarity.js";
import type { HostTensor } from "../runtime/host-tensor.js";
import type { PlanName } from "../runtime/load-model.js";
import { randomInputs } from "../runtime/model-inputs.js";
import { ORT_VERSION } from "../util/ort-version.js";
import { defaultCacheRoot } from "../config.js";
import type { StrategyName } from "../config.js";
import type { BenchTarget, CacheState } from "./cold-start-types.js";
import { describeMachine, type Machine } from "../metrics/machine.js";
import { evictFiles, largestFile, makeResident, verifyEviction, type EvictionCheck } from "./page-cache.js";
import {
  packageRoot,
  readOutputs,
  runHandler,
  writeInputs,
  writeScratchProject,
  type HandlerConfig,
  type HandlerName,
  type Spawned,
} from "./process-handlers.js";
import { median, rotation, summarize, type Summary } from "../metrics/stats.js";

/** Options of {@link benchProcesses}. */
export interface ProcessBenchOptions {
  /** eager and ort-best run the plain scripts; every other strategy runs cicada-node's public API. */
  strategies: StrategyName[];
  /** Counted rounds (a warm-up round comes first). */
  repeat: number;
  cache: CacheState;
  seed?: number;
  plan?: "auto" | PlanName;
  /** Where cicada's derived forms and the scratch project live (default: the cache root). */
  cacheRoot?: string;
  /** A handler that has not exited by then is killed and the bench fails (default 600 s). */
  timeoutMs?: number;
  onProgress?: (line: string) => void;
}

/** Where one cold start's time went (ms), from the handler's timestamps. */
export interface ProcessBreakdown {
  /** spawn → the handler's first line: process creation, node's bootstrap, the handler module. */
  nodeStart: number;
  inputs: number;
  import: number;
  /** createRuntime (0 for the plain scripts). */
  runtimeStart: number;
  /** loadModel's return (cicada keeps loading during the run) or InferenceSession.create. */
  load: number;
  firstRun: number;
  write: number;
  /** first output → exit: disposing, closing, process teardown. */
  exit: number;
}

/** One cold start. */
export interface ProcessRun {
  round: number;
  warmUp: boolean;
  position: number;
  contestant: StrategyName;
  /** spawn → the output line (outputs written), as the harness saw it. */
  firstOutputMs: number;
  /** spawn → exit. */
  exitMs: number;
  breakdown: ProcessBreakdown;
  /** Worst cosine vs the reference over every output. */
  cosineMin: number;
  eviction?: EvictionCheck;
}

/** A contestant's figures over the counted rounds. */
export interface ProcessResult {
  contestant: StrategyName;
  handler: HandlerName;
  firstOutput: Summary;
  exit: Summary;
  /** Median of each part. */
  breakdown: ProcessBreakdown;
  /** Median over rounds of this contestant's first-output time / the other's in the same round. */
  ratioToEager: number;
  ratioToOrtBest: number;
  cosineMin: number;
}

/** The summary of one model. */
export interface ProcessBenchSummary {
  model: string;
  bundle: string;
  scenario: "process";
  cache: CacheState;
  repeat: number;
  weightBytes: number;
  machine: Machine;
  results: ProcessResult[];
}

/** Everything measured on one model. */
export interface ProcessBenchRaw {
  model: string;
  cache: CacheState;
  files: Partial<Record<StrategyName, string[]>>;
  runs: ProcessRun[];
}

function handlerOf(strategy: StrategyName): HandlerName {
  return strategy === "eager" || strategy === "ort-best" ? strategy : "cicada";
}

/** Removes scratch projects of bench runs whose process is gone. */
async function removeStaleScratch(base: string): Promise<void> {
  if (!existsSync(base)) return;
  for (const name of readdirSync(base)) {
    const pid = Number(/^run-(\d+)$/.exec(name)?.[1]);
    if (!pid || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch {
      await rm(join(base, name), { recursive: true, force: true });
    }
  }
}

function worstCosine(
  actual: Record<string, HostTensor>,
  reference: Record<string, HostTensor>,
  what: string,
): number {
  const names = Object.keys(reference);
  if (names.some((n) => !actual[n]) || Object.keys(actual).length !== names.length) {
    throw new CicadaError(
      "E_OUTPUT_MISSING",
      `${what}: outputs [${Object.keys(actual).join(", ")}] vs the reference's [${names.join(", ")}]`,
    );
  }
  return Math.min(
    ...names.map((n) => compareTensors(actual[n]!, reference[n]!, `${what}: output '${n}'`).cosine),
  );
}

function breakdownOf(s: Spawned): ProcessBreakdown {
  const t = s.lines.find((l) => l.kind === "output")?.times;
  if (!t) throw new CicadaError("E_RUNTIME", "a bench handler exited without its output line");
  return {
    nodeStart: t.start - s.spawnAt,
    inputs: t.inputs - t.start,
    import: t.imported - t.inputs,
    runtimeStart: t.runtime - t.imported,
    load: t.loaded - t.runtime,
    firstRun: t.ran - t.loaded,
    write: t.written - t.ran,
    exit: s.exitAt - s.firstOutputAt,
  };
}

const PARTS: readonly (keyof ProcessBreakdown)[] = [
  "nodeStart",
  "inputs",
  "import",
  "runtimeStart",
  "load",
  "firstRun",
  "write",
  "exit",
];

/** Median over rounds of a's first output / b's in the same round (NaN when b did not run). */
function pairedRatio(runs: readonly ProcessRun[], a: StrategyName, b: StrategyName): number {
  const ratios: number[] = [];
  for (const r of runs.filter((x) => x.contestant === a)) {
    const other = runs.find((x) => x.contestant === b && x.round === r.round);
    if (other) ratios.push(r.firstOutputMs / other.firstOutputMs);
  }
  return median(ratios);
}

/** Summarises one contestant over the counted rounds. */
export function summarizeContestant(contestant: StrategyName, all: readonly ProcessRun[]): ProcessResult {
  const mine = all.filter((r) => r.contestant === contestant);
  const counted = all.filter((r) => !r.warmUp);
  const runs = mine.filter((r) => !r.warmUp);
  return {
    contestant,
    handler: handlerOf(contestant),
    firstOutput: summarize(runs.map((r) => r.firstOutputMs)),
    exit: summarize(runs.map((r) => r.exitMs)),
    breakdown: Object.fromEntries(
      PARTS.map((p) => [p, median(runs.map((r) => r.breakdown[p]))]),
    ) as unknown as ProcessBreakdown,
    ratioToEager: pairedRatio(counted, contestant, "eager"),
    ratioToOrtBest: pairedRatio(counted, contestant, "ort-best"),
    cosineMin: Math.min(...mine.map((r) => r.cosineMin)),
  };
}

function availableMemoryBytes(): number {
  const kib = existsSync("/proc/meminfo")
    ? /MemAvailable:\s+(\d+) kB/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1]
    : undefined;
  return kib ? Number(kib) * 1024 : totalmem();
}

async function benchOne(
  target: BenchTarget,
  o: ProcessBenchOptions,
  scratch: string,
  handlers: Record<HandlerName, string>,
  env: NodeJS.ProcessEnv,
): Promise<{ summary: ProcessBenchSummary; raw: ProcessBenchRaw }> {
  const say = o.onProgress ?? (() => {});
  const timeout = o.timeoutMs ?? 600_000;
  const bundle = await openBundle(target.bundleDir);
  const source = bundle.manifest.model.source;
  if (!existsSync(source)) {
    throw new CicadaError(
      "E_BUNDLE_FILE",
      `${target.bundleDir}: the original model ${source} does not exist; the plain scripts load it`,
    );
  }
  const dir = join(scratch, target.name.replace(/[^\w.-]+/g, "_"));
  const inputs = await writeInputs(
    join(dir, "inputs"),
    randomInputs(bundle.manifest.inputs, o.seed ?? 0, target.name),
  );
  // Prepare runs go through the cicada handler (it reports eager's files too), except ort-best's own.
  const configFor = (s: StrategyName, out: string, prepare = false): HandlerConfig => ({
    model: handlerOf(s) === "cicada" || (prepare && s !== "ort-best") ? target.bundleDir : source,
    inputs,
    out,
    strategy: s,
    plan: o.plan ?? "auto",
    optimised: join(dir, "ort-best-model"),
    ...(prepare ? { prepare } : {}),
  });

  // Outside any clock: cicada's derived forms, ort-best's optimised graph, each contestant's files, and the
  // reference outputs (the eager script once).
  say(`${target.name}: preparing ${o.strategies.join(", ")}`);
  const files: Partial<Record<StrategyName, string[]>> = {};
  for (const s of o.strategies) {
    const prepared = await runHandler(
      handlers[handlerOf(s) === "ort-best" ? "ort-best" : "cicada"],
      configFor(s, join(dir, "prepare"), true),
      dir,
      env,
      timeout,
    );
    for (const l of prepared.lines) Object.assign(files, l.files ?? {});
  }
  const refOut = join(dir, "reference");
  await runHandler(handlers.eager, configFor("eager", refOut), dir, env, timeout);
  const reference = readOutputs(refOut);

  const runs: ProcessRun[] = [];
  for (let round = 0; round <= o.repeat; round++) {
    for (const [position, contestant] of rotation(o.strategies, round).entries()) {
      const mine = files[contestant] ?? [];
      let eviction: EvictionCheck | undefined;
      if (o.cache === "cold") {
        await evictFiles(mine);
        eviction = await verifyEviction(largestFile(mine));
      } else {
        await makeResident(mine, availableMemoryBytes());
      }
      const out = join(dir, "out");
      await rm(out, { recursive: true, force: true });
      const s = await runHandler(
        handlers[handlerOf(contestant)],
        configFor(contestant, out),
        dir,
        env,
        timeout,
      );
      const run: ProcessRun = {
        round,
        warmUp: round === 0,
        position,
        contestant,
        firstOutputMs: s.firstOutputAt - s.spawnAt,
        exitMs: s.exitAt - s.spawnAt,
        breakdown: breakdownOf(s),
        cosineMin: worstCosine(readOutputs(out), reference, `${target.name}/${contestant}`),
        ...(eviction ? { eviction } : {}),
      };
      runs.push(run);
      say(
        `${target.name} ${o.cache} ${round === 0 ? "warm-up" : `round ${round}/${o.repeat}`} ${contestant}: first output ${run.firstOutputMs.toFixed(1)} ms, exit ${run.exitMs.toFixed(1)} ms, cosine ${run.cosineMin.toFixed(6)}`,
      );
    }
  }
  const summary: ProcessBenchSummary = {
    model: target.name,
    bundle: target.bundleDir,
    scenario: "process",
    cache: o.cache,
    repeat: o.repeat,
    weightBytes: bundle.manifest.stages.reduce((n, st) => n + st.weights.length, 0),
    machine: describeMachine(ORT_VERSION),
    results: o.strategies.map((s) => summarizeContestant(s, runs)),
  };
  return { summary, raw: { model: target.name, cache: o.cache, files, runs } };
}

/** Benchmarks every target in turn with fresh processes (see the header). */
export async function benchProcesses(
  targets: readonly BenchTarget[],
  o: ProcessBenchOptions,
): Promise<{ summaries: ProcessBenchSummary[]; raws: ProcessBenchRaw[] }> {
  if (o.strategies.length === 0) throw new CicadaError("E_USAGE", "bench: no strategy to measure");
  if (!Number.isInteger(o.repeat) || o.repeat < 1)
    throw new CicadaError("E_USAGE", `bench: repeat must be an integer >= 1, found ${o.repeat}`);
  const root = packageRoot();
  if (!existsSync(join(root, "dist", "index.js"))) {
    throw new CicadaError(
      "E_USAGE",
      `--scenario process runs the built package: ${join(root, "dist")} is missing; run \`npm run build\` in ${root}`,
    );
  }
  const cacheRoot = o.cacheRoot ?? defaultCacheRoot();
  const base = join(cacheRoot, "bench-process");
  await removeStaleScratch(base);
  const scratch = join(base, `run-${process.pid}`);
  // The handlers run plain node: no loader of this process (tsx in development) is passed on.
  const env: NodeJS.ProcessEnv = { ...process.env, CICADA_CACHE: cacheRoot };
  delete env.NODE_OPTIONS;
  try {
    const handlers = await writeScratchProject(scratch);
    const summaries: ProcessBenchSummary[] = [];
    const raws: ProcessBenchRaw[] = [];
    for (const target of targets) {
      const { summary, raw } = await benchOne(target, o, scratch, handlers, env);
      summaries.push(summary);
      raws.push(raw);
    }
    return { summaries, raws };
  } finally {
    await rm(scratch, { recursive: true, force: true });
    if (existsSync(base) && readdirSync(base).length === 0) await rm(base, { recursive: true, force: true });
  }
}

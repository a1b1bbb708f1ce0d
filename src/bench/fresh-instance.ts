// A benchmark instance: a child process that plays one serverless instance. At start (outside any clock) it
// creates the runtime (worker threads with onnxruntime initialised) and its memory sampler thread, then
// says `ready` over IPC and serves the harness's requests one at a time. The `fresh` scenario starts one
// per cold start; the `reload` scenario keeps one per strategy for the whole run. Each cold start reports
// its latency, trace, outputs checked against eager, its own minor faults and its memory (peak and series),
// all measured inside the instance so nothing of the harness is on the clock.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { deserialize, serialize } from "node:v8";
import { isCicadaError, type ErrorCode } from "../errors.js";
import { writeFileAtomic } from "../format/atomic-output.js";
import { openBundle } from "../format/bundle.js";
import type { Manifest } from "../format/manifest.js";
import { similarity } from "../metrics/similarity.js";
import { now, type Trace } from "../metrics/trace.js";
import type { HostTensor } from "../runtime/host-tensor.js";
import {
  filesRead,
  loadModel,
  prepareModel,
  type LoadedModel,
  type ModelRun,
  type PlanName,
} from "../runtime/load-model.js";
import { randomInputs } from "../runtime/model-inputs.js";
import { ORT_VERSION } from "../runtime/ort-adapter.js";
import { COPY_FACTOR, fitsDefaultBudget } from "../runtime/memory-budget.js";
import { runEager, runSequential } from "../runtime/reference-runner.js";
import { createRuntime } from "../runtime/runtime.js";
import type { Hazard, StrategyName } from "../config.js";
import { downsample, MemorySampler } from "./memory-sampler.js";
import type { ProcStatus } from "../metrics/proc-memory.js";

/** Requests of the harness. */
export type InstanceRequest =
  | { kind: "prepare"; bundleDir: string; strategies: StrategyName[]; plan: "auto" | PlanName }
  | { kind: "reference"; bundleDir: string; seed: number; path: string }
  | { kind: "warm-runs"; bundleDir: string; seed: number; runs: number }
  | {
      kind: "cold-start";
      bundleDir: string;
      strategy: StrategyName;
      seed: number;
      /** cicada's plan (LoadOptions.plan). */
      plan: "auto" | PlanName;
      /** LoadOptions.hazard and memoryBudgetBytes, when given. */
      hazard?: Hazard;
      memoryBudgetBytes?: number;
      referencePath: string;
      /** Memory samples kept in the report (the peak is computed over all of them). */
      maxSamples: number;
    };

/** A request as sent: its `id` is echoed in the reply. */
export interface InstanceEnvelope {
  id: number;
  request: InstanceRequest;
}

/** What each request kind resolves to. */
export interface InstanceResults {
  prepare: { files: Partial<Record<StrategyName, string[]>> };
  reference: { outputs: string[]; stageOutputs: string[]; runner: "eager" | "sequential" };
  "warm-runs": { ms: number[]; strategy: StrategyName };
  "cold-start": ColdStartReport;
}

/** Messages of an instance: `ready` once, then one reply per request. */
export type InstanceMessage =
  | { kind: "ready"; pid: number; ortVersion: string }
  | { kind: "reply"; id: number; ok: true; result: InstanceResults[keyof InstanceResults] }
  | { kind: "reply"; id: number; ok: false; error: { code?: ErrorCode; message: string } };

/** One output compared with eager's on the same inputs. */
export interface OutputCheck {
  name: string;
  dtype: string;
  dims: number[];
  cosine: number;
  maxAbsDiff: number;
}

/** One stage output compared with the same intermediate tensor of eager. */
export interface StageCheck {
  stage: number;
  tensor: string;
  cosine: number;
  maxAbsDiff: number;
}

/** Eager's outputs on the bench inputs: the graph outputs and every stage boundary tensor. */
interface Reference {
  outputs: Record<string, HostTensor>;
  stageOutputs: Record<string, HostTensor>;
}

/** Everything one cold start measured. */
export interface ColdStartReport {
  strategy: StrategyName;
  /** The plan the load used (cicada chooses; see LoadOptions.plan). */
  plan: PlanName;
  /** Request start (loadModel called) to response complete (first run resolved). */
  latencyMs: number;
  trace: Trace;
  outputs: OutputCheck[];
  cosineMin: number;
  /** Every stage output of this cold start against eager's value of the same tensor. */
  stageCosines: StageCheck[];
  /** Page faults of the whole process (every thread) during the cold start. */
  minorFaults: number;
  majorFaults: number;
  /** CPU time of the whole process during the cold start (user + system). */
  cpuMs: number;
  memory: {
    baseline: ProcStatus;
    peak: ProcStatus;
    peakArrayBuffersBytes: number;
    baselineArrayBuffersBytes: number;
    intervalMs: number;
    /** [t, rss, rssAnon, rssFile] on the trace's clock, downsampled to at most `maxSamples`. */
    samples: [number, number, number, number][];
    /** [t, main thread arrayBuffers bytes], downsampled to at most `maxSamples`. */
    arrayBuffers: [number, number][];
  };
  /** Cold starts this process had served before this one (0 in a fresh instance). */
  previousColdStarts: number;
}

const references = new Map<string, Reference>();

async function referenceOutputs(path: string): Promise<Reference> {
  let ref = references.get(path);
  if (!ref) {
    ref = deserialize(await readFile(path)) as Reference;
    references.set(path, ref);
  }
  return ref;
}

/** Whether eager can run the model: its original file is there and its copy of the weights fits in memory. */
function eagerRuns(manifest: Manifest): boolean {
  return (
    existsSync(manifest.model.source) && fitsDefaultBudget(manifest.totalWeightBytes * COPY_FACTOR.parse)
  );
}

async function inputsOf(bundleDir: string, seed: number): Promise<Record<string, HostTensor>> {
  return randomInputs((await openBundle(bundleDir)).manifest.inputs, seed);
}

const runtime = await createRuntime();
// A pre-started instance: every worker up before any clock starts (createRuntime itself does not wait).
await runtime.ready();
const sampler = await MemorySampler.start(1);
let coldStarts = 0;

async function coldStart(req: Extract<InstanceRequest, { kind: "cold-start" }>): Promise<ColdStartReport> {
  const feeds = await inputsOf(req.bundleDir, req.seed);
  // Start every cold start from the same heap: garbage of the previous request is not this one's memory.
  global.gc?.();
  const usage0 = process.resourceUsage();
  sampler.begin();
  const t0 = now();
  let model: LoadedModel | undefined;
  let result: ModelRun;
  try {
    model = await loadModel(runtime, req.bundleDir, {
      strategy: req.strategy,
      plan: req.plan,
      ...(req.hazard ? { hazard: req.hazard } : {}),
      ...(req.memoryBudgetBytes ? { memoryBudgetBytes: req.memoryBudgetBytes } : {}),
    });
    // Stage outputs are kept for the per-stage check: one copy of each boundary activation (small next to
    // the weights) is the only work this adds to the clock.
    result = await model.run(feeds, { stageOutputs: true });
  } catch (e) {
    sampler.end();
    await model?.dispose();
    throw e;
  }
  const latencyMs = now() - t0;
  const window = sampler.end();
  const usage1 = process.resourceUsage();
  await model.dispose();
  const reference = await referenceOutputs(req.referencePath);
  const outputs: OutputCheck[] = Object.entries(reference.outputs).map(([name, expected]) => {
    const actual = result.outputs[name];
    if (!actual) return { name, dtype: expected.dtype, dims: expected.dims, cosine: 0, maxAbsDiff: Infinity };
    return { name, dtype: actual.dtype, dims: actual.dims, ...similarity(actual.data, expected.data) };
  });
  const { manifest } = await openBundle(req.bundleDir);
  const stageCosines: StageCheck[] = manifest.stages.flatMap((stage) =>
    stage.outputs.flatMap(({ name }) => {
      const actual = result.stageOutputs?.[name];
      const expected = reference.stageOutputs[name];
      return actual && expected
        ? [{ stage: stage.index, tensor: name, ...similarity(actual.data, expected.data) }]
        : [];
    }),
  );
  const report: ColdStartReport = {
    strategy: req.strategy,
    plan: model.plan,
    latencyMs,
    trace: result.trace,
    outputs,
    cosineMin: Math.min(...outputs.map((o) => o.cosine)),
    stageCosines,
    minorFaults: usage1.minorPageFault - usage0.minorPageFault,
    majorFaults: usage1.majorPageFault - usage0.majorPageFault,
    cpuMs: (usage1.userCPUTime - usage0.userCPUTime + usage1.systemCPUTime - usage0.systemCPUTime) / 1000,
    memory: {
      baseline: window.baseline,
      peak: window.peak,
      peakArrayBuffersBytes: window.peakArrayBuffersBytes,
      baselineArrayBuffersBytes: window.arrayBuffers[0]?.[1] ?? 0,
      intervalMs: window.intervalMs,
      samples: downsample(window.samples, req.maxSamples).map((s) => [
        s.t,
        s.rssBytes,
        s.rssAnonBytes,
        s.rssFileBytes,
      ]),
      arrayBuffers: downsample(window.arrayBuffers, req.maxSamples, ([, bytes]) => bytes),
    },
    previousColdStarts: coldStarts,
  };
  coldStarts++;
  return report;
}

async function serve(req: InstanceRequest): Promise<InstanceResults[keyof InstanceResults]> {
  switch (req.kind) {
    case "prepare": {
      const files: Partial<Record<StrategyName, string[]>> = {};
      for (const s of req.strategies) {
        await prepareModel(runtime, req.bundleDir, s, req.plan);
        // NOTE: filesRead names `<model>.onnx.data` for eager even when the original model embeds its
        // weights; only files that exist can be read (or evicted).
        files[s] = (await filesRead(runtime, req.bundleDir, s, req.plan)).filter((f) => existsSync(f));
      }
      return { files };
    }
    case "reference": {
      const bundle = await openBundle(req.bundleDir);
      const { manifest } = bundle;
      const graphOutputs = new Set(manifest.outputs.map((o) => o.name));
      const probes = manifest.stages.flatMap((s) => s.outputs).filter((o) => !graphOutputs.has(o.name));
      const feeds = await inputsOf(req.bundleDir, req.seed);
      // eager on the original model, unless it cannot run (see eagerRuns): then the sequential reference
      // runner, stage by stage on the bundle.
      const eagerFits = eagerRuns(manifest);
      const run = eagerFits
        ? await runEager(manifest.model.source, feeds, {}, probes)
        : await runSequential(bundle, feeds, {}, true);
      const all = eagerFits ? run.outputs : run.stageOutputs!;
      const reference: Reference = { outputs: {}, stageOutputs: all };
      for (const name of graphOutputs) reference.outputs[name] = run.outputs[name]!;
      await writeFileAtomic(req.path, serialize(reference));
      return {
        outputs: Object.keys(reference.outputs),
        stageOutputs: Object.keys(all),
        runner: eagerFits ? "eager" : "sequential",
      };
    }
    case "warm-runs": {
      const feeds = await inputsOf(req.bundleDir, req.seed);
      // The floor: eager's warm run, or cicada's when eager cannot hold the model (the budget refuses it).
      const { manifest } = await openBundle(req.bundleDir);
      const strategy = eagerRuns(manifest) ? "eager" : "cicada";
      const model = await loadModel(runtime, req.bundleDir, { strategy });
      try {
        await model.run(feeds);
        const ms: number[] = [];
        for (let i = 0; i < req.runs; i++) {
          const t0 = now();
          await model.run(feeds);
          ms.push(now() - t0);
        }
        return { ms, strategy };
      } finally {
        await model.dispose();
      }
    }
    case "cold-start":
      return coldStart(req);
  }
}

function send(message: InstanceMessage): void {
  process.send!(message);
}

let queue: Promise<void> = Promise.resolve();
process.on("message", ({ id, request }: InstanceEnvelope) => {
  // One request at a time: a cold start must never share the machine with another request of this instance.
  queue = queue.then(async () => {
    try {
      send({ kind: "reply", id, ok: true, result: await serve(request) });
    } catch (e) {
      const error = isCicadaError(e)
        ? { code: e.code, message: e.message }
        : { message: (e as Error).stack ?? String(e) };
      send({ kind: "reply", id, ok: false, error });
    }
  });
});
process.on("disconnect", () => {
  void queue.then(async () => {
    await sampler.close();
    await runtime.close();
    process.exit(0);
  });
});
send({ kind: "ready", pid: process.pid, ortVersion: ORT_VERSION });

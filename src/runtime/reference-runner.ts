// The reference strategies every other one is checked against: `eager`, one onnxruntime session over the
// original model as a plain Node.js user would create it, and `sequential`, the bundle's stages built and
// run one after another on the calling thread (the importer's correctness check, no overlap).
import { performance } from "node:perf_hooks";
import {
  openBundle,
  readStageStructure,
  readStageWeights,
  stageExternalData,
  type Bundle,
} from "../format/bundle.js";
import type { HostTensor } from "./host-tensor.js";
import { validateInputs } from "./model-inputs.js";
import { createSession, releaseSession, runSession, type SessionConfig } from "./ort-adapter.js";

/** Timings of one stage of a sequential run, in milliseconds. */
export interface StageTiming {
  stage: number;
  readMs: number;
  createMs: number;
  runMs: number;
  weightBytes: number;
}

/** Result of a reference run. */
export interface ReferenceRun {
  strategy: string;
  outputs: Record<string, HostTensor>;
  /** Load (create) plus first run, in milliseconds. */
  totalMs: number;
  createMs: number;
  runMs: number;
  stages: StageTiming[];
}

/** Runs the whole model in one session: `InferenceSession.create(model.onnx)` then `run`. */
export async function runEager(
  modelPath: string,
  feeds: Record<string, HostTensor>,
  config: SessionConfig = {},
): Promise<ReferenceRun> {
  const t0 = performance.now();
  const session = await createSession(modelPath, config);
  const t1 = performance.now();
  try {
    const outputs = await runSession(session, feeds);
    const t2 = performance.now();
    return { strategy: "eager", outputs, totalMs: t2 - t0, createMs: t1 - t0, runMs: t2 - t1, stages: [] };
  } finally {
    await releaseSession(session);
  }
}

/** For each tensor, the last stage that reads it, so that activations are dropped once dead. */
function lastUse(bundle: Bundle): Map<string, number> {
  const last = new Map<string, number>();
  for (const s of bundle.manifest.stages) for (const i of s.inputs) last.set(i.name, s.index);
  return last;
}

/**
 * Runs a bundle's stages one after another: read the stage's weights (checksum verified), create its
 * session from the structure graph with the weights as in-memory external data, run, release.
 */
export async function runSequential(
  bundleOrDir: Bundle | string,
  feeds: Record<string, HostTensor>,
  config: SessionConfig = {},
): Promise<ReferenceRun> {
  const bundle = typeof bundleOrDir === "string" ? await openBundle(bundleOrDir) : bundleOrDir;
  const { manifest } = bundle;
  validateInputs(manifest.inputs, feeds, bundle.dir);
  const graphOutputs = new Set(manifest.outputs.map((o) => o.name));
  const last = lastUse(bundle);
  const live = new Map<string, HostTensor>(Object.entries(feeds));
  const outputs: Record<string, HostTensor> = {};
  const stages: StageTiming[] = [];
  const t0 = performance.now();
  for (const stage of manifest.stages) {
    const r0 = performance.now();
    const [weights, structure] = await Promise.all([
      readStageWeights(bundle, stage.index),
      readStageStructure(bundle, stage.index),
    ]);
    const r1 = performance.now();
    const session = await createSession(structure, {
      ...config,
      externalData: stageExternalData(stage, weights),
    });
    const r2 = performance.now();
    const stageFeeds: Record<string, HostTensor> = {};
    for (const input of stage.inputs) stageFeeds[input.name] = live.get(input.name)!;
    let result: Record<string, HostTensor>;
    try {
      result = await runSession(session, stageFeeds);
    } finally {
      await releaseSession(session);
    }
    const r3 = performance.now();
    for (const [name, t] of Object.entries(result)) {
      if (graphOutputs.has(name)) outputs[name] = t;
      if ((last.get(name) ?? -1) > stage.index) live.set(name, t);
    }
    for (const input of stage.inputs) if (last.get(input.name) === stage.index) live.delete(input.name);
    stages.push({
      stage: stage.index,
      readMs: r1 - r0,
      createMs: r2 - r1,
      runMs: r3 - r2,
      weightBytes: stage.weights.length,
    });
  }
  const totalMs = performance.now() - t0;
  return {
    strategy: "sequential",
    outputs,
    totalMs,
    createMs: stages.reduce((n, s) => n + s.readMs + s.createMs, 0),
    runMs: stages.reduce((n, s) => n + s.runMs, 0),
    stages,
  };
}

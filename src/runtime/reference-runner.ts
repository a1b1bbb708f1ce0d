// The reference strategies every other one is checked against: `eager`, one onnxruntime session over the
// original model as a plain Node.js user would create it, and `sequential`, the bundle's stages built and
// run one after another on the calling thread (the importer's correctness check, no overlap).
import { link, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import {
  openBundle,
  readStageStructure,
  readStageWeights,
  stageExternalData,
  type Bundle,
} from "../format/bundle.js";
import { externalLocation, isExternal, readOnnxFile, writeOnnxFile } from "../format/onnx-io.js";
import { dtypeFromName, type DTypeName } from "../format/onnx-types.js";
import type { HostTensor } from "./host-tensor.js";
import { validateInputs } from "./model-inputs.js";
import { Activations } from "./model/activations.js";
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
  /** runSequential with `keepStageOutputs`: every stage's outputs, by tensor name. */
  stageOutputs?: Record<string, HostTensor>;
  /** Load (create) plus first run, in milliseconds. */
  totalMs: number;
  createMs: number;
  runMs: number;
  stages: StageTiming[];
}

/** An intermediate tensor to fetch besides the graph outputs (a stage boundary, for per-stage checks). */
export interface ProbeTensor {
  name: string;
  dtype: DTypeName;
}

/**
 * Runs the whole model in one session: `InferenceSession.create(model.onnx)` then `run`. With `probes`,
 * the session is built from a copy of the model that also outputs those intermediate tensors, and they come
 * back in `outputs` next to the graph outputs.
 */
export async function runEager(
  modelPath: string,
  feeds: Record<string, HostTensor>,
  config: SessionConfig = {},
  probes: readonly ProbeTensor[] = [],
): Promise<ReferenceRun> {
  if (probes.length)
    return withProbeModel(modelPath, probes, (source) => runEager(source.path, feeds, source.config(config)));
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

/** A probe model on disk, and the session options that find its external data. */
interface ProbeSource {
  path: string;
  config(base: SessionConfig): SessionConfig;
}

/**
 * Writes `modelPath` with `probes` added to its graph outputs into a temporary directory and calls `use`.
 * onnxruntime resolves external data next to the model file and refuses paths leaving its directory, so
 * the external files are hard-linked beside the copy (no bytes copied); where linking is impossible (another
 * file system), they are handed over in memory instead.
 */
async function withProbeModel<T>(
  modelPath: string,
  probes: readonly ProbeTensor[],
  use: (source: ProbeSource) => Promise<T>,
): Promise<T> {
  const file = await readOnnxFile(modelPath);
  const graph = file.model.graph!;
  const outputs = (graph.output ??= []);
  const known = new Set(outputs.map((o) => o.name));
  for (const p of probes) {
    if (!known.has(p.name))
      outputs.push({ name: p.name, type: { tensorType: { elemType: dtypeFromName(p.dtype) } } });
  }
  const locations = new Set(
    (graph.initializer ?? []).filter(isExternal).map((t) => externalLocation(t, modelPath).location),
  );
  let dir: string;
  try {
    dir = await mkdtemp(join(file.dir, ".cicada-probe-"));
  } catch {
    dir = await mkdtemp(join(tmpdir(), "cicada-probe-"));
  }
  try {
    const inMemory: { path: string; data: Uint8Array }[] = [];
    for (const location of locations) {
      const target = join(dir, location);
      await mkdir(dirname(target), { recursive: true });
      try {
        await link(join(file.dir, location), target);
      } catch {
        inMemory.push({ path: location, data: await readFile(join(file.dir, location)) });
      }
    }
    const path = join(dir, "model.onnx");
    await writeOnnxFile(path, file.model);
    return await use({
      path,
      config: (base) => (inMemory.length ? { ...base, externalData: inMemory } : base),
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Runs a bundle's stages one after another: read the stage's weights (checksum verified), create its
 * session from the structure graph with the weights as in-memory external data, run, release.
 */
export async function runSequential(
  bundleOrDir: Bundle | string,
  feeds: Record<string, HostTensor>,
  config: SessionConfig = {},
  keepStageOutputs = false,
): Promise<ReferenceRun> {
  const bundle = typeof bundleOrDir === "string" ? await openBundle(bundleOrDir) : bundleOrDir;
  const { manifest } = bundle;
  validateInputs(manifest.inputs, feeds, bundle.dir);
  const graphOutputs = new Set(manifest.outputs.map((o) => o.name));
  const activations = new Activations(
    manifest.stages.map((s) => s.inputs.map((i) => i.name)),
    feeds,
    bundle.dir,
  );
  const stageOutputs: Record<string, HostTensor> | undefined = keepStageOutputs ? {} : undefined;
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
    const stageFeeds = activations.feedsOf(stage.index, false);
    let result: Record<string, HostTensor>;
    try {
      result = await runSession(session, stageFeeds);
    } finally {
      await releaseSession(session);
    }
    const r3 = performance.now();
    for (const [name, t] of Object.entries(result)) {
      if (graphOutputs.has(name)) outputs[name] = t;
      if (stageOutputs) stageOutputs[name] = t;
    }
    activations.produced(stage.index, result);
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
    ...(stageOutputs ? { stageOutputs } : {}),
    totalMs,
    createMs: stages.reduce((n, s) => n + s.readMs + s.createMs, 0),
    runMs: stages.reduce((n, s) => n + s.runMs, 0),
    stages,
  };
}

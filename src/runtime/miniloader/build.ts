// MiniLoader's build, on the build thread (build-thread.ts): construction without redundant work. A plain
// cold start re-parses the model, copies every weight out of it and re-runs graph optimisation (layout
// rewrites that reorder the weights) each time. MiniLoader does that work once per (bundle, onnxruntime
// version, CPU): each graph is optimised at level `all` and saved with its (reordered, optionally
// prepacked) weights in a data file beside it. A cold start then creates the session by path with
// optimisation disabled; onnxruntime maps the data file instead of copying it (measured: create 10-15 ms
// instead of ~250 ms for ResNet-50). The graphs are the stages' (one per stage, for the pipeline) and/or
// the whole model's (every stage merged, its data file laid out in execution order).
import { existsSync } from "node:fs";
import { stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CicadaError } from "../../errors.js";
import {
  openBundle,
  readStageStructure,
  readStageWeights,
  stageExternalData,
  type Bundle,
} from "../../format/bundle.js";
import { fileCrc32 } from "../../format/checksum.js";
import {
  graphFileNames,
  miniLoaderKey,
  type MiniLoaderOptions,
  type OptimizedStage,
} from "../../cache/miniloader-entry.js";
import { layOutInExecutionOrder } from "../execution-order.js";
import { createSession, releaseSession } from "../ort-adapter.js";
import { mergeStages } from "../stage-merge.js";
import { BUILD_THREADS, type BuildJob, type MiniLoaderBuilt } from "./build-thread.js";

/**
 * Optimises a structure graph with its in-memory weights into `dir`: level `all`, saved with its
 * (reordered, optionally prepacked) weights in a data file beside it.
 */
async function optimizeInto(
  dir: string,
  names: { model: string; data: string },
  structure: Uint8Array,
  externalData: { path: string; data: Uint8Array }[],
  options: MiniLoaderOptions,
  executionOrder = false,
): Promise<OptimizedStage> {
  const entries: Record<string, string> = {
    optimized_model_external_initializers_file_name: names.data,
    optimized_model_external_initializers_min_size_in_bytes: "1024",
  };
  if (options.prepack) entries.save_external_prepacked_constant_initializers = "1";
  const session = await createSession(structure, {
    graphOptimizationLevel: "all",
    optimizedModelFilePath: join(dir, names.model),
    externalData,
    sessionConfigEntries: entries,
    // NOTE: onnxruntime warns that an `all`-optimised graph is hardware specific; the cache key says so.
    logSeverityLevel: 3,
    ...BUILD_THREADS,
  });
  await releaseSession(session);
  const dataPath = join(dir, names.data);
  // A graph whose weights are all small keeps them inline: give it an empty data file for uniformity.
  if (!existsSync(dataPath)) await writeFile(dataPath, new Uint8Array(0));
  else if (executionOrder) await layOutInExecutionOrder(join(dir, names.model), names.data);
  return {
    modelPath: join(dir, names.model),
    modelChecksum: await fileCrc32(join(dir, names.model)),
    dataPath,
    dataBytes: (await stat(dataPath)).size,
    dataChecksum: await fileCrc32(dataPath),
  };
}

/** Optimises stage `index` into `dir`. */
async function optimizeStage(
  bundle: Bundle,
  index: number,
  dir: string,
  options: MiniLoaderOptions,
): Promise<OptimizedStage> {
  const stage = bundle.manifest.stages[index]!;
  const [weights, structure] = await Promise.all([
    readStageWeights(bundle, index),
    readStageStructure(bundle, index),
  ]);
  return optimizeInto(dir, graphFileNames(index), structure, stageExternalData(stage, weights), options);
}

/** Optimises the whole model (every stage merged) into `dir`. */
async function optimizeWhole(
  bundle: Bundle,
  dir: string,
  options: MiniLoaderOptions,
): Promise<OptimizedStage> {
  const merged = await mergeStages(bundle, 0, bundle.manifest.stages.length - 1);
  return optimizeInto(dir, graphFileNames("whole"), merged.model, merged.externalData, options, true);
}

/**
 * Builds the forms `job` asks for into its staging directory, stage by stage (`onStage` hears of each),
 * then the whole graph. The bundle is opened (and validated) again here: one whose content changed since
 * the caller computed the entry's key is refused (E_CACHE), never built under the old key.
 */
export async function buildMiniLoaderForms(
  job: Extract<BuildJob, { kind: "miniloader" }>,
  onStage?: (done: number, total: number) => void,
): Promise<MiniLoaderBuilt> {
  const bundle = await openBundle(job.bundleDir);
  if (miniLoaderKey(bundle, job.options) !== job.key) {
    throw new CicadaError(
      "E_CACHE",
      `${job.bundleDir} changed while MiniLoader's cache entry for it was being built; load it again`,
    );
  }
  const built: MiniLoaderBuilt = {};
  if (job.forms.includes("stages")) {
    const total = bundle.manifest.stages.length;
    built.stages = [];
    for (let i = 0; i < total; i++) {
      built.stages.push(await optimizeStage(bundle, i, job.staging, job.options));
      onStage?.(i + 1, total);
    }
  }
  if (job.forms.includes("whole")) built.whole = await optimizeWhole(bundle, job.staging, job.options);
  return built;
}

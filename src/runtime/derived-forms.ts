// On-disk forms the peers and PISeL need, derived from a bundle (never faked): PISeL's self-contained
// stage files (weights inside, as PISeL loads a layer from its own file) and ort-best's whole model saved
// once after `all` optimisation with its weights external (what a careful Node.js user would do without
// us). Built outside any request's clock, on the build thread (miniloader/build-thread.ts: the builders
// below run there), cached as entries of cache/forms.ts (atomic under concurrent processes, the disk they
// need checked first, each file's checksum recorded); the runtime verifies them before it uses them.
import { existsSync } from "node:fs";
import { mkdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CicadaError, isCicadaError } from "../errors.js";
import {
  bundleContentKey,
  openBundle,
  readStageStructure,
  readStageWeights,
  type Bundle,
} from "../format/bundle.js";
import { ORT_BEST_FILES, ensureForm, ortBestDir, piselDir, piselFileNames } from "../cache/forms.js";
import { isVerified, verifyFiles, type CheckedFile } from "../cache/integrity.js";
import { sourceStampsDir, stageWeightBytes, writeOrigin } from "../cache/layout.js";

/** PISeL's self-contained stage files (stage i: weights embedded) with their checksums, built on first use. */
export async function ensurePiselStages(bundle: Bundle, cacheRoot: string): Promise<CheckedFile[]> {
  const names = piselFileNames(bundle);
  const structureBytes = bundle.manifest.stages.reduce((n, s) => n + s.fileBytes, 0);
  return ensureForm({
    dir: piselDir(bundle, cacheRoot),
    names,
    what: `PISeL's stage files of ${bundle.dir}`,
    // Every weight once, inside the stage graphs.
    expectedBytes: stageWeightBytes(bundle) + structureBytes,
    build: async (staging) => {
      const { runBuild } = await import("./miniloader/build-thread.js");
      await runBuild({ kind: "pisel", bundleDir: bundle.dir, contentKey: bundleContentKey(bundle), staging });
    },
  });
}

/**
 * On the build thread: writes PISeL's stage files of the bundle at `bundleDir` into `staging`; a bundle
 * whose content is no longer `contentKey` (the form's key was computed from it) is refused.
 */
export async function buildPiselStages(
  bundleDir: string,
  contentKey: string,
  staging: string,
): Promise<void> {
  const { decodeModel, encodeModel, externalLocation, isExternal } = await import("../format/onnx-io.js");
  const bundle = await openBundle(bundleDir);
  if (bundleContentKey(bundle) !== contentKey)
    throw new CicadaError(
      "E_CACHE",
      `${bundleDir} changed while PISeL's stage files were being built; load it again`,
    );
  const names = piselFileNames(bundle);
  writeOrigin(staging, bundle.dir);
  for (const stage of bundle.manifest.stages) {
    const [structure, weights] = await Promise.all([
      readStageStructure(bundle, stage.index),
      readStageWeights(bundle, stage.index),
    ]);
    const model = decodeModel(structure, stage.file);
    for (const t of model.graph?.initializer ?? []) {
      if (!isExternal(t)) continue;
      const loc = externalLocation(t, stage.file);
      t.rawData = weights.subarray(loc.offset, loc.offset + loc.length);
      delete t.externalData;
      delete t.dataLocation;
    }
    await writeFile(join(staging, names[stage.index]!), encodeModel(model));
  }
}

/** The original model a bundle was imported from (eager's input), refused clearly if it is gone. */
export function sourceModelPath(bundle: Bundle): string {
  const source = bundle.manifest.model.source;
  if (!existsSync(source)) {
    throw new CicadaError(
      "E_BUNDLE_FILE",
      `${bundle.dir}: the original model ${source} (needed by eager and ort-best) does not exist`,
    );
  }
  return source;
}

/**
 * The original model, verified to be the file the bundle was imported from (size, then sha256 once per
 * file identity, stamped under `<cacheRoot>/sources`): eager and ort-best run nothing else. A model
 * changed since the import is E_BUNDLE_CHECKSUM: import it again.
 */
export async function sourceModelOf(bundle: Bundle, cacheRoot: string): Promise<string> {
  const source = sourceModelPath(bundle);
  const { sourceBytes, sourceChecksum } = bundle.manifest.model;
  const size = (await stat(source)).size;
  const changed = (found: string) =>
    new CicadaError(
      "E_BUNDLE_CHECKSUM",
      `${source} (the original model of ${bundle.dir}) is not the file it was imported from: expected ${sourceChecksum}, found ${found}; import it again`,
    );
  if (size !== sourceBytes) throw changed(`${size} bytes instead of ${sourceBytes}`);
  const stamps = sourceStampsDir(cacheRoot);
  const files = [{ path: source, checksum: sourceChecksum }];
  if (isVerified(stamps, files)) return source;
  await mkdir(stamps, { recursive: true }).catch(() => undefined);
  await verifyFiles(stamps, files, async () => {}).catch((e: unknown) => {
    throw isCicadaError(e, "E_BUNDLE_CHECKSUM") ? changed("other bytes") : e;
  });
  return source;
}

/**
 * ort-best's model (graph, then data file, with their checksums): the source optimised once at `all` and
 * saved with external weights, keyed by the source's checksum (verified by sourceModelOf), its path (its
 * external data is resolved beside it), the CPU and the runtime.
 */
export async function ensureOrtBestModel(bundle: Bundle, cacheRoot: string): Promise<CheckedFile[]> {
  const source = await sourceModelOf(bundle, cacheRoot);
  return ensureForm({
    dir: ortBestDir(cacheRoot, source, bundle.manifest.model.sourceChecksum),
    names: ORT_BEST_FILES,
    what: `ort-best's model of ${source}`,
    // The optimised graph and its weights: about the source's graph and weights (onnxruntime's layouts
    // keep the weights' size).
    expectedBytes: stageWeightBytes(bundle) + bundle.manifest.model.sourceBytes,
    build: async (staging) => {
      const { runBuild } = await import("./miniloader/build-thread.js");
      await runBuild({ kind: "ort-best", source, staging });
    },
  });
}

/** On the build thread: optimises `source` at `all` into `staging` (model.onnx, model.data). */
export async function buildOrtBestModel(source: string, staging: string): Promise<void> {
  const { createSession, releaseSession } = await import("./ort-adapter.js");
  const { BUILD_THREADS } = await import("./miniloader/build-thread.js");
  const [model, data] = ORT_BEST_FILES;
  writeOrigin(staging, source);
  const session = await createSession(source, {
    graphOptimizationLevel: "all",
    optimizedModelFilePath: join(staging, model),
    sessionConfigEntries: {
      optimized_model_external_initializers_file_name: data,
      optimized_model_external_initializers_min_size_in_bytes: "1024",
    },
    logSeverityLevel: 3,
    ...BUILD_THREADS,
  });
  await releaseSession(session);
  // A model whose weights are all small keeps them inline: an empty data file, for uniformity.
  if (!existsSync(join(staging, data))) await writeFile(join(staging, data), new Uint8Array(0));
}

// Where generated zoo models and their bundles live between runs: outside the repository, under
// $CICADA_CACHE or the user's cache directory. Generation is atomic, so concurrent processes that race to
// create the same entry both end up using one complete copy.
import { join } from "node:path";
import { createOnce } from "../format/atomic-output.js";
import { BUNDLE_FORMAT_VERSION } from "../format/manifest.js";
import { importModel } from "../importer/import-model.js";
import { generateZooModel } from "../zoo/registry.js";
import { touchEntry } from "../runtime/cache-root.js";
import { defaultCacheRoot } from "../runtime/runtime.js";

type OnProgress = (phase: string, done: number, total: number) => void;

/** Path of the zoo model `name` (seed `seed`) as plain ONNX, generating it on first use. */
export async function ensureZooModel(name: string, seed = 0, onProgress?: OnProgress): Promise<string> {
  const dir = join(defaultCacheRoot(), "zoo", `${name}-seed${seed}`);
  await createOnce(dir, () =>
    generateZooModel(name, dir, { seed, onProgress: (d, t) => onProgress?.("generate", d, t) }),
  );
  touchEntry(dir);
  return join(dir, "model.onnx");
}

/** Path of the bundle of zoo model `name`, importing (and generating) it on first use. */
export async function ensureZooBundle(
  name: string,
  options: { seed?: number; stages?: number; onProgress?: OnProgress } = {},
): Promise<{ bundleDir: string; modelPath: string }> {
  const seed = options.seed ?? 0;
  const modelPath = await ensureZooModel(name, seed, options.onProgress);
  // The format version is part of the name: a bundle of an older format is imported anew beside it.
  const bundleDir = join(
    defaultCacheRoot(),
    "bundles",
    `${name}-seed${seed}-${options.stages ?? "auto"}-v${BUNDLE_FORMAT_VERSION}`,
  );
  await createOnce(bundleDir, () =>
    importModel(modelPath, bundleDir, {
      ...(options.stages !== undefined ? { stages: options.stages } : {}),
      onProgress: (phase, d, t) => options.onProgress?.(`import ${phase}`, d, t),
    }),
  );
  touchEntry(bundleDir);
  return { bundleDir, modelPath };
}

// Where generated zoo models and their bundles live between runs: outside the repository, under
// $CICADA_CACHE or the user's cache directory. Generation is atomic, so concurrent processes that race to
// create the same entry both end up using one complete copy.
import { createHash } from "node:crypto";
import { realpathSync, statSync } from "node:fs";
import { basename, extname, join } from "node:path";
import { createOnce } from "../format/atomic-output.js";
import { BUNDLE_FORMAT_VERSION } from "../format/manifest.js";
import { importModel } from "../importer/import-model.js";
import { generateZooModel } from "../zoo/registry.js";
import { touchEntry } from "../cache/layout.js";
import { defaultCacheRoot } from "../config.js";

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

/**
 * The bundle of any .onnx model, imported into the cache on first use (`cicada run MODEL.onnx` with a
 * strategy that needs a bundle). Keyed by the file's path and identity: a changed model is imported anew.
 */
export async function ensureModelBundle(modelPath: string, onProgress?: OnProgress): Promise<string> {
  const real = realpathSync(modelPath);
  const info = statSync(real);
  const key = createHash("sha256")
    .update(`${real}|${info.dev}:${info.ino}|${info.size}|${info.mtimeMs}`)
    .digest("hex")
    .slice(0, 16);
  const name = basename(real, extname(real)).replace(/[^A-Za-z0-9_.-]/g, "_");
  const bundleDir = join(defaultCacheRoot(), "bundles", `${name}-${key}-v${BUNDLE_FORMAT_VERSION}`);
  await createOnce(bundleDir, () =>
    importModel(real, bundleDir, { onProgress: (phase, d, t) => onProgress?.(`import ${phase}`, d, t) }),
  );
  touchEntry(bundleDir);
  return bundleDir;
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

// On-disk forms the peers and PISeL need, derived from a bundle (never faked): PISeL's self-contained
// stage files (weights inside, as PISeL loads a layer from its own file) and ort-best's whole model saved
// once after `all` optimisation with its weights external (what a careful Node.js user would do without
// us). Built outside any request's clock, cached, atomic under concurrent processes. Each records the
// checksum of every file it wrote (index.json); the runtime verifies them before it uses what it built.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CicadaError, isCicadaError } from "../errors.js";
import { createOnce, writeOutputDir } from "../format/atomic-output.js";
import { bundleContentKey, readStageStructure, readStageWeights, type Bundle } from "../format/bundle.js";
import { fileCrc32 } from "../format/checksum.js";
import { touchEntry, writeOrigin } from "./cache-root.js";
import { isPlainFile, isVerified, markVerified, verifyFiles, type CheckedFile } from "./file-integrity.js";
import { cpuSignature } from "../util/cpu.js";
import { ORT_VERSION } from "../util/ort-version.js";

const INDEX_FILE = "index.json";

function bundleKey(bundle: Bundle): string {
  return createHash("sha256")
    .update("cicada-pisel-v2\n")
    .update(bundleContentKey(bundle))
    .digest("hex")
    .slice(0, 24);
}

/** Writes the index of a derived form: each file's name and crc32. */
async function writeIndex(dir: string, names: readonly string[]): Promise<void> {
  const files: Record<string, string> = {};
  for (const n of names) files[n] = await fileCrc32(join(dir, n));
  await writeFile(join(dir, INDEX_FILE), JSON.stringify({ files }));
  // Checksums computed from the files just written: they are verified (the stamp moves with the directory).
  markVerified(
    dir,
    names.map((n) => ({ path: join(dir, n), checksum: files[n]! })),
  );
}

/**
 * The files of a derived form with their recorded checksums, if its index names each of `names` and
 * they are plain files; undefined if the form is unusable (the caller removes and rebuilds it).
 */
async function readIndex(dir: string, names: readonly string[]): Promise<CheckedFile[] | undefined> {
  try {
    const { files } = JSON.parse(await readFile(join(dir, INDEX_FILE), "utf8")) as {
      files: Record<string, unknown>;
    };
    const out: CheckedFile[] = [];
    for (const n of names) {
      const checksum = files[n];
      const path = join(dir, n);
      if (typeof checksum !== "string" || !isPlainFile(path)) return undefined;
      out.push({ path, checksum });
    }
    return out;
  } catch {
    return undefined;
  }
}

/** A derived form's files, built on first use and rebuilt once if the existing one has no usable index. */
async function ensureForm(
  dir: string,
  names: readonly string[],
  build: (tmp: string) => Promise<void>,
): Promise<CheckedFile[]> {
  const create = () =>
    writeOutputDir(dir, async (tmp) => {
      await build(tmp);
      await writeIndex(tmp, names);
    });
  await createOnce(dir, create);
  let files = await readIndex(dir, names);
  if (!files) {
    await rm(dir, { recursive: true, force: true });
    await createOnce(dir, create);
    files = await readIndex(dir, names);
  }
  if (!files) throw new CicadaError("E_CACHE", `cache entry ${dir} has no usable index after a rebuild`);
  touchEntry(dir);
  return files;
}

/**
 * Verifies a derived form's files once per identity (see file-integrity.ts); a corrupt form is removed
 * (the next use rebuilds it) and E_BUNDLE_CHECKSUM thrown.
 */
export async function verifyForm(files: readonly CheckedFile[]): Promise<void> {
  await verifyFiles(join(files[0]!.path, ".."), files, () => evictForm(files[0]!));
}

/** Removes the derived form that holds `file` (found corrupt): the next use rebuilds it. */
export async function evictForm(file: CheckedFile): Promise<void> {
  await rm(join(file.path, ".."), { recursive: true, force: true });
}

/** PISeL's self-contained stage files (stage i: weights embedded) with their checksums, built on first use. */
export async function ensurePiselStages(bundle: Bundle, cacheRoot: string): Promise<CheckedFile[]> {
  const dir = join(cacheRoot, "pisel", bundleKey(bundle));
  const names = bundle.manifest.stages.map((s) => `stage-${String(s.index).padStart(3, "0")}.onnx`);
  return ensureForm(dir, names, async (tmp) => {
    const { decodeModel, encodeModel, externalLocation, isExternal } = await import("../format/onnx-io.js");
    writeOrigin(tmp, bundle.dir);
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
      await writeFile(join(tmp, names[stage.index]!), encodeModel(model));
    }
  });
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
  const stamps = join(cacheRoot, "sources");
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
  const key = createHash("sha256")
    .update(
      `cicada-ort-best-v3|${source}|${bundle.manifest.model.sourceChecksum}|${ORT_VERSION}|${cpuSignature()}`,
    )
    .digest("hex")
    .slice(0, 24);
  const dir = join(cacheRoot, "ort-best", key);
  return ensureForm(dir, ["model.onnx", "model.data"], async (tmp) => {
    const { createSession, releaseSession } = await import("./ort-adapter.js");
    writeOrigin(tmp, source);
    const session = await createSession(source, {
      graphOptimizationLevel: "all",
      optimizedModelFilePath: join(tmp, "model.onnx"),
      sessionConfigEntries: {
        optimized_model_external_initializers_file_name: "model.data",
        optimized_model_external_initializers_min_size_in_bytes: "1024",
      },
      logSeverityLevel: 3,
    });
    await releaseSession(session);
    // A model whose weights are all small keeps them inline: an empty data file, for uniformity.
    if (!existsSync(join(tmp, "model.data"))) await writeFile(join(tmp, "model.data"), new Uint8Array(0));
  });
}

// The derived forms the peers need, as cache entries: PISeL's self-contained stage files and ort-best's
// optimised model. Each is one directory, keyed by what it depends on, installed whole (cache/install.ts)
// with an index (index.json) of every file it holds and its crc32, written when it was built; a form
// without a usable index is removed and built again, once. How a form is built is the runtime's business
// (runtime/derived-forms.ts), handed in as a callback: nothing here loads onnxruntime.
import { existsSync } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CicadaError } from "../errors.js";
import { bundleContentKey, type Bundle } from "../format/bundle.js";
import { fileCrc32 } from "../format/checksum.js";
import { cpuSignature } from "../util/cpu.js";
import { ORT_VERSION } from "../util/ort-version.js";
import { evictForm } from "./eviction.js";
import { installEntry } from "./install.js";
import { isPlainFile, markVerified, verifyFiles, type CheckedFile } from "./integrity.js";
import { entryKey, kindDir, stageStem, touchEntry } from "./layout.js";

/** The index of a derived form. */
const INDEX_FILE = "index.json";

/** PISeL's stage files of `bundle` under `cacheRoot`: their directory, keyed by the bundle's content. */
export function piselDir(bundle: Bundle, cacheRoot: string): string {
  return join(kindDir(cacheRoot, "pisel"), entryKey("cicada-pisel-v2\n", bundleContentKey(bundle)));
}

/** PISeL's file names: `stage-NNN.onnx`, one per stage. */
export function piselFileNames(bundle: Bundle): string[] {
  return bundle.manifest.stages.map((s) => `${stageStem(s.index)}.onnx`);
}

/** The files of ort-best's model: the optimised graph, then its external data. */
export const ORT_BEST_FILES = ["model.onnx", "model.data"] as const;

/**
 * ort-best's model directory: keyed by the source's path (its external data is resolved beside it) and
 * checksum (verified before use), the CPU and the runtime.
 */
export function ortBestDir(cacheRoot: string, source: string, sourceChecksum: string): string {
  const key = entryKey(`cicada-ort-best-v3|${source}|${sourceChecksum}|${ORT_VERSION}|${cpuSignature()}`);
  return join(kindDir(cacheRoot, "ort-best"), key);
}

/** Writes the index of a derived form being built in `dir`: each file's name and crc32. */
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

/** How a derived form is built: its files, what it needs on disk and the builder. */
export interface FormBuild {
  /** The form's directory. */
  dir: string;
  /** Its files, in the order they are returned. */
  names: readonly string[];
  /** What is built, for the error when the disk is too small. */
  what: string;
  /** Bytes its files will take (checked before anything is written). */
  expectedBytes: number;
  /** Writes the files into the staging directory it is given. */
  build: (staging: string) => Promise<void>;
}

/**
 * A derived form's files with their checksums: the existing form, or one built now (and once more if the
 * existing one has no usable index). Marked as used.
 */
export async function ensureForm(form: FormBuild): Promise<CheckedFile[]> {
  const create = () =>
    installEntry(
      form.dir,
      { what: form.what, expectedBytes: form.expectedBytes, index: INDEX_FILE },
      async (staging) => {
        await form.build(staging);
        await writeIndex(staging, form.names);
      },
    );
  let files = existsSync(form.dir) ? await readIndex(form.dir, form.names) : undefined;
  if (!files) {
    // One without a usable index is removed first: a new one takes its place.
    if (existsSync(form.dir)) await rm(form.dir, { recursive: true, force: true });
    await create();
    files = await readIndex(form.dir, form.names);
  }
  if (!files) throw new CicadaError("E_CACHE", `cache entry ${form.dir} has no usable index after a rebuild`);
  touchEntry(form.dir);
  return files;
}

/**
 * Verifies a derived form's files once per identity (see integrity.ts); a corrupt form is removed (the
 * next use rebuilds it) and E_BUNDLE_CHECKSUM thrown.
 */
export async function verifyForm(files: readonly CheckedFile[]): Promise<void> {
  await verifyFiles(join(files[0]!.path, ".."), files, () => evictForm(files[0]!));
}

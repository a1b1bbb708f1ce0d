// Opening a bundle for the runtime: the manifest validated, every file it names resolved inside the
// bundle (after symlinks) and checked to be a regular file of the size the manifest promises; each
// stage's weight range read with one large positional read and verified against its checksum, and each
// stage graph verified and its external references contained before anything is built from it.
import { realpathSync, statSync } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { join, sep } from "node:path";
import { CicadaError } from "../errors.js";
import { crc32Of, sha256Of } from "./checksum.js";
import { checkExternalRefs } from "./external-refs.js";
import { readManifest, WEIGHTS_FILE, type Manifest, type Stage } from "./manifest.js";

/** An opened, validated bundle. */
export interface Bundle {
  /** The directory as given (for messages). */
  dir: string;
  manifest: Manifest;
  /** weights.safetensors, resolved inside the bundle. */
  weightsPath: string;
  weightsFileBytes: number;
  /** Each stage's structure graph, resolved inside the bundle. */
  stagePaths: string[];
}

/**
 * `rel` resolved under `root` (a real path) after symlinks: E_BUNDLE_FILE if it does not exist,
 * E_BUNDLE_PATH if it escapes `root` or is not a regular file (a device, a FIFO, a directory).
 */
export function containedFile(root: string, rel: string, what: string): { path: string; size: number } {
  // NOTE: synchronous: a few metadata calls per stage on the path of a cold start, where each await of
  // libuv's thread pool cost ~0.2 ms (vgg16's 16 stages: 3.7 ms to open the bundle).
  let real: string;
  try {
    real = realpathSync(join(root, rel));
  } catch {
    throw new CicadaError("E_BUNDLE_FILE", `${join(root, rel)} (${what}) is missing`);
  }
  if (!real.startsWith(root + sep)) {
    throw new CicadaError(
      "E_BUNDLE_PATH",
      `${join(root, rel)} (${what}) resolves to ${real}, outside ${root}`,
    );
  }
  const info = statSync(real);
  if (!info.isFile()) {
    throw new CicadaError("E_BUNDLE_PATH", `${join(root, rel)} (${what}) is not a regular file`);
  }
  return { path: real, size: info.size };
}

/** Opens a bundle: manifest, and every file it names contained, regular and of the promised size. */
export async function openBundle(dir: string): Promise<Bundle> {
  const manifest = await readManifest(dir);
  const root = realpathSync(dir);
  const weights = containedFile(root, WEIGHTS_FILE, "the weights file");
  const stagePaths: string[] = [];
  for (const s of manifest.stages) {
    const end = s.weights.offset + s.weights.length;
    if (end > weights.size) {
      throw new CicadaError(
        "E_BUNDLE_FILE",
        `${weights.path} is too short: stage ${s.index} needs bytes up to ${end}, the file has ${weights.size}`,
      );
    }
    const graph = containedFile(root, s.file, `structure graph of stage ${s.index}`);
    if (graph.size !== s.fileBytes) {
      throw new CicadaError(
        "E_BUNDLE_FILE",
        `${graph.path} (structure graph of stage ${s.index}) has ${graph.size} bytes, the manifest says ${s.fileBytes}`,
      );
    }
    stagePaths.push(graph.path);
  }
  return { dir, manifest, weightsPath: weights.path, weightsFileBytes: weights.size, stagePaths };
}

/**
 * What a derived form of the bundle depends on, as text for a cache key: the manifest (which holds the
 * checksum of every stage graph and weight range) without where the bundle was imported from.
 */
export function bundleContentKey(bundle: Bundle): string {
  const m = bundle.manifest;
  return JSON.stringify({ ...m, model: { ...m.model, source: "" } });
}

/** Throws E_BUNDLE_CHECKSUM unless `bytes` match the stage's checksum. */
export function verifyStageWeights(bundle: Bundle, stage: Stage, bytes: Uint8Array): void {
  const found = crc32Of(bytes);
  if (found !== stage.weights.checksum) {
    throw new CicadaError(
      "E_BUNDLE_CHECKSUM",
      `${bundle.weightsPath}: weights of stage ${stage.index} (bytes ${stage.weights.offset}..${stage.weights.offset + stage.weights.length}) fail their checksum: expected ${stage.weights.checksum}, found ${found}`,
    );
  }
}

/**
 * Reads a stage's weight range into `target` (or a new buffer) with positional reads of at most `chunkBytes`,
 * calling `beforeChunk` before each so that a scheduler can pause or reorder retrievals. Verifies the checksum.
 */
export async function readStageWeights(
  bundle: Bundle,
  stageIndex: number,
  options: {
    target?: Uint8Array;
    chunkBytes?: number;
    beforeChunk?: () => Promise<void>;
    verify?: boolean;
  } = {},
): Promise<Uint8Array> {
  const stage = bundle.manifest.stages[stageIndex];
  if (!stage) throw new CicadaError("E_USAGE", `stage ${stageIndex} does not exist in ${bundle.dir}`);
  const { offset, length } = stage.weights;
  const target = options.target ?? Buffer.allocUnsafe(length);
  if (target.byteLength < length)
    throw new CicadaError(
      "E_USAGE",
      `buffer of ${target.byteLength} bytes for stage ${stageIndex} needs ${length}`,
    );
  const chunk = options.chunkBytes ?? length;
  const handle = await open(bundle.weightsPath, "r");
  try {
    let done = 0;
    while (done < length) {
      if (options.beforeChunk) await options.beforeChunk();
      const { bytesRead } = await handle.read(target, done, Math.min(chunk, length - done), offset + done);
      if (bytesRead === 0) {
        throw new CicadaError(
          "E_BUNDLE_FILE",
          `${bundle.weightsPath} ended early while reading stage ${stageIndex}`,
        );
      }
      done += bytesRead;
    }
  } finally {
    await handle.close();
  }
  const bytes = target.subarray(0, length);
  if (options.verify !== false) verifyStageWeights(bundle, stage, bytes);
  return bytes;
}

/**
 * The in-memory external data that binds `weights` to a stage's structure graph. NOTE: onnxruntime refuses
 * a zero-length buffer ("contains null pointers"), and a stage without large weights names no external file.
 */
export function stageExternalData(stage: Stage, weights: Uint8Array): { path: string; data: Uint8Array }[] {
  return weights.byteLength > 0 ? [{ path: stage.weights.location, data: weights }] : [];
}

/** Stage graphs (by checksum, location and range) whose external references were checked in this process. */
const contained = new Set<string>();

/**
 * The structure graph bytes of a stage, verified against the manifest's checksum (E_BUNDLE_CHECKSUM) and
 * with every external reference inside the stage's own weight range (E_BUNDLE_PATH): the only form in
 * which stage graphs reach onnxruntime.
 */
export async function readStageStructure(bundle: Bundle, stageIndex: number): Promise<Uint8Array> {
  const stage = bundle.manifest.stages[stageIndex]!;
  const path = bundle.stagePaths[stageIndex]!;
  const bytes = await readFile(path);
  const found = sha256Of(bytes);
  if (found !== stage.fileChecksum) {
    throw new CicadaError(
      "E_BUNDLE_CHECKSUM",
      `${path} (structure graph of stage ${stageIndex}) fails its checksum: expected ${stage.fileChecksum}, found ${found}`,
    );
  }
  const key = `${found} ${stage.weights.location} ${stage.weights.length}`;
  if (!contained.has(key)) {
    // Decoding is needed only here, so protobufjs is not loaded on a cold start that never gets here.
    const { decodeModel } = await import("./onnx-io.js");
    checkExternalRefs(decodeModel(bytes, path), stage.weights.location, stage.weights.length, path);
    contained.add(key);
  }
  return bytes;
}

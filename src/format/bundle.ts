// Opening a bundle for the runtime: the manifest validated, its files checked to exist with the sizes the
// manifest promises, and each stage's weight range read with one large positional read and verified
// against its checksum before anything is built from it.
import { open, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { CicadaError } from "../errors.js";
import { readManifest, WEIGHTS_FILE, type Manifest, type Stage } from "./manifest.js";

/** An opened, validated bundle. */
export interface Bundle {
  dir: string;
  manifest: Manifest;
  weightsPath: string;
  weightsFileBytes: number;
}

/** `crc32:` and 8 hex digits: the checksum format of stage weight ranges. */
export function checksumOf(bytes: Uint8Array): string {
  return `crc32:${crc32(bytes).toString(16).padStart(8, "0")}`;
}

/** Opens a bundle: manifest schema, weights file size, stage files present. */
export async function openBundle(dir: string): Promise<Bundle> {
  const manifest = await readManifest(dir);
  const weightsPath = join(dir, WEIGHTS_FILE);
  let weightsFileBytes: number;
  try {
    weightsFileBytes = (await stat(weightsPath)).size;
  } catch {
    throw new CicadaError("E_BUNDLE_FILE", `${weightsPath} is missing`);
  }
  for (const s of manifest.stages) {
    const end = s.weights.offset + s.weights.length;
    if (end > weightsFileBytes) {
      throw new CicadaError(
        "E_BUNDLE_FILE",
        `${weightsPath} is too short: stage ${s.index} needs bytes up to ${end}, the file has ${weightsFileBytes}`,
      );
    }
    try {
      await stat(join(dir, s.file));
    } catch {
      throw new CicadaError(
        "E_BUNDLE_FILE",
        `${join(dir, s.file)} (structure graph of stage ${s.index}) is missing`,
      );
    }
  }
  return { dir, manifest, weightsPath, weightsFileBytes };
}

/** Throws E_BUNDLE_CHECKSUM unless `bytes` match the stage's checksum. */
export function verifyStageWeights(bundle: Bundle, stage: Stage, bytes: Uint8Array): void {
  const found = checksumOf(bytes);
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

/** The structure graph bytes of a stage. */
export async function readStageStructure(bundle: Bundle, stageIndex: number): Promise<Uint8Array> {
  const stage = bundle.manifest.stages[stageIndex]!;
  return readFile(join(bundle.dir, stage.file));
}

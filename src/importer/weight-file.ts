// Writes a bundle's weights.safetensors: every weight of every stage, stage after stage in execution
// order, each stage's range starting on a page. Bytes are streamed tensor by tensor (external data in
// chunks), so memory stays bounded whatever the model's size, and each stage's checksum is computed
// while its bytes go by.
import { open, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { CicadaError } from "../errors.js";
import { formatCrc32 } from "../format/checksum.js";
import { externalLocation, isExternal, tensorData } from "../format/onnx-io.js";
import { dtypeName } from "../format/onnx-types.js";
import { PAGE_BYTES, planSafetensors, safetensorsDType, type PlanEntry } from "../format/safetensors.js";
import type { StageSlice, StageWeight } from "./stage-graph.js";

/** Alignment of each weight inside a stage's range (a cache line, enough for any SIMD load). */
export const TENSOR_ALIGNMENT = 64;

/** Bytes copied per read/write of external data. */
const COPY_CHUNK_BYTES = 64 * 1024 * 1024;

/** A stage's range of the file. */
export interface StageRange {
  /** Absolute offset (page aligned) and length of the range. */
  offset: number;
  length: number;
  /** `crc32:` and 8 hex digits of the range's bytes. */
  checksum: string;
  /** Each weight's place, relative to the range, by safetensors key. */
  places: Map<string, { offset: number; length: number }>;
}

/** What was written. */
export interface WeightFile {
  ranges: StageRange[];
  fileBytes: number;
  /** Bytes of padding entries (alignment). */
  paddingBytes: number;
}

/** Where the source model's bytes are: its directory (external data is relative to it) and its path. */
export interface ModelLocation {
  dir: string;
  source: string;
}

function planEntry(w: StageWeight, first: boolean, source: string): PlanEntry {
  const name = dtypeName(w.tensor.dataType ?? 0);
  const dtype = name && safetensorsDType(name);
  if (!dtype) {
    throw new CicadaError(
      "E_ONNX_UNSUPPORTED",
      `${source}: weight '${w.name}' has element type ${w.tensor.dataType}, which safetensors cannot hold`,
    );
  }
  return {
    key: w.key,
    dtype,
    shape: [...(w.tensor.dims ?? [])],
    byteLength: w.bytes,
    alignment: first ? PAGE_BYTES : TENSOR_ALIGNMENT,
  };
}

/** Checks, before anything is copied, that every weight's bytes exist where the model says. */
async function checkSources(slices: StageSlice[], at: ModelLocation): Promise<void> {
  const sizes = new Map<string, number>();
  for (const w of slices.flatMap((s) => s.weights.filter((x) => !x.copy))) {
    if (!isExternal(w.tensor)) {
      if (w.tensor.rawData && w.tensor.rawData.length !== w.bytes) {
        throw new CicadaError(
          "E_ONNX_PARSE",
          `${at.source}: weight '${w.name}' has ${w.tensor.rawData.length} bytes of raw_data, its shape needs ${w.bytes}`,
        );
      }
      continue;
    }
    const loc = externalLocation(w.tensor, at.source);
    const file = join(at.dir, loc.location);
    if (loc.length !== w.bytes) {
      throw new CicadaError(
        "E_ONNX_EXTERNAL_DATA",
        `${at.source}: weight '${w.name}' has external length ${loc.length}, its shape needs ${w.bytes} bytes`,
      );
    }
    let size = sizes.get(file);
    if (size === undefined) {
      try {
        const h = await open(file, "r");
        size = (await h.stat()).size;
        await h.close();
      } catch (e) {
        throw new CicadaError(
          "E_ONNX_EXTERNAL_DATA",
          `${at.source}: weight '${w.name}' is stored in ${file}, which cannot be opened (${(e as Error).message})`,
          { cause: e },
        );
      }
      sizes.set(file, size);
    }
    if (loc.offset + loc.length > size) {
      throw new CicadaError(
        "E_ONNX_EXTERNAL_DATA",
        `${at.source}: weight '${w.name}' needs bytes ${loc.offset}..${loc.offset + loc.length} of ${file}, which has ${size}`,
      );
    }
  }
}

/**
 * Writes `path` with the weights of `slices` (in order) and returns each stage's range and checksum.
 * `onProgress(doneBytes, totalBytes)` is called as weight bytes are copied.
 */
export async function writeWeightFile(
  path: string,
  slices: StageSlice[],
  at: ModelLocation,
  metadata: Record<string, string>,
  onProgress?: (done: number, total: number) => void,
): Promise<WeightFile> {
  await checkSources(slices, at);
  const entries = slices.flatMap((s) => s.weights.map((w, i) => planEntry(w, i === 0, at.source)));
  const plan = planSafetensors(entries, metadata);
  const total = entries.reduce((n, e) => n + e.byteLength, 0);
  const sources = new Map<string, FileHandle>();
  const out = await open(path, "w");
  const chunk = Buffer.allocUnsafe(Math.min(COPY_CHUNK_BYTES, Math.max(total, 1)));
  const zeros = Buffer.alloc(PAGE_BYTES);
  let position = 0;
  let done = 0;
  const write = async (bytes: Uint8Array): Promise<void> => {
    for (let o = 0; o < bytes.length;) {
      const { bytesWritten } = await out.write(bytes, o, bytes.length - o, position);
      o += bytesWritten;
      position += bytesWritten;
    }
  };
  try {
    await write(plan.header);
    const ranges: StageRange[] = [];
    let next = 0;
    for (const slice of slices) {
      const placed = plan.entries.slice(next, next + slice.weights.length);
      next += slice.weights.length;
      const start = placed[0]?.offset ?? Math.floor(position / PAGE_BYTES) * PAGE_BYTES;
      let crc = 0;
      const places = new Map<string, { offset: number; length: number }>();
      for (const [i, w] of slice.weights.entries()) {
        const entry = placed[i]!;
        if (entry.offset > position) {
          const pad = zeros.subarray(0, entry.offset - position);
          if (i > 0) crc = crc32(pad, crc);
          await write(pad);
        }
        places.set(w.key, { offset: entry.offset - start, length: w.bytes });
        if (isExternal(w.tensor)) {
          const loc = externalLocation(w.tensor, at.source);
          const file = join(at.dir, loc.location);
          let handle = sources.get(file);
          if (!handle) sources.set(file, (handle = await open(file, "r")));
          for (let o = 0; o < loc.length;) {
            const n = Math.min(chunk.length, loc.length - o);
            const { bytesRead } = await handle.read(chunk, 0, n, loc.offset + o);
            if (bytesRead === 0) {
              throw new CicadaError(
                "E_ONNX_EXTERNAL_DATA",
                `${at.source}: ${file} ended while reading '${w.name}'`,
              );
            }
            const bytes = chunk.subarray(0, bytesRead);
            crc = crc32(bytes, crc);
            await write(bytes);
            o += bytesRead;
            done += bytesRead;
            onProgress?.(done, total);
          }
        } else {
          const bytes = await tensorData(w.tensor, at.dir, at.source);
          crc = crc32(bytes, crc);
          await write(bytes);
          done += bytes.length;
          onProgress?.(done, total);
        }
      }
      ranges.push({
        offset: start,
        length: slice.weights.length ? position - start : 0,
        checksum: formatCrc32(crc),
        places,
      });
    }
    if (position !== plan.fileBytes) {
      throw new Error(`weights file ended at ${position}, planned ${plan.fileBytes}`);
    }
    return { ranges, fileBytes: plan.fileBytes, paddingBytes: plan.paddingBytes };
  } finally {
    await out.close();
    for (const h of sources.values()) await h.close();
  }
}

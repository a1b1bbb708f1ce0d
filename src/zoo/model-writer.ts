// Writes a zoo graph as a plain ONNX model with its weights as external data (`model.onnx` +
// `model.onnx.data`), generating each weight chunk by chunk so that memory stays bounded whatever the
// model's size. The directory appears only when complete (see atomic-output.ts).
import { open } from "node:fs/promises";
import { join } from "node:path";
import { writeOutputDir } from "../format/atomic-output.js";
import { encodeModel, setExternal } from "../format/onnx-io.js";
import type { TensorProto } from "../format/onnx-types.js";
import type { GraphBuilder, WeightSpec } from "./graph-builder.js";
import { SeededRandom } from "../util/seeded-random.js";

/** Name of the external-data file beside model.onnx. */
export const ZOO_DATA_FILE = "model.onnx.data";

/** Elements generated per chunk: 4 Mi floats = 16 MiB. */
const CHUNK_ELEMENTS = 4 * 1024 * 1024;

/** Large tensors start on a page boundary so that readers can map or read them directly. */
function alignFor(bytes: number): number {
  return bytes >= 1 << 20 ? 4096 : 64;
}

export interface WriteProgress {
  (doneBytes: number, totalBytes: number): void;
}

export interface WrittenModel {
  modelPath: string;
  dataPath: string;
  weightBytes: number;
  parameterCount: number;
}

async function writeWeights(
  weights: WeightSpec[],
  dataPath: string,
  seed: number,
  onProgress?: WriteProgress,
): Promise<Map<string, { offset: number; length: number }>> {
  const total = weights.reduce((n, w) => n + 4 * w.dims.reduce((a, b) => a * b, 1), 0);
  const places = new Map<string, { offset: number; length: number }>();
  const handle = await open(dataPath, "w");
  const chunk = new Float32Array(CHUNK_ELEMENTS);
  const chunkBytes = new Uint8Array(chunk.buffer);
  const zeros = new Uint8Array(4096);
  let position = 0;
  let done = 0;
  try {
    for (const w of weights) {
      const count = w.dims.reduce((a, b) => a * b, 1);
      const length = count * 4;
      const align = alignFor(length);
      const pad = (align - (position % align)) % align;
      if (pad) await handle.write(zeros, 0, pad, position);
      position += pad;
      places.set(w.name, { offset: position, length });
      const rng = new SeededRandom(seed, w.name);
      for (let start = 0; start < count; start += CHUNK_ELEMENTS) {
        const n = Math.min(CHUNK_ELEMENTS, count - start);
        const view = chunk.subarray(0, n);
        if (w.init.kind === "constant") view.fill(w.init.value);
        else rng.fillUniform(view, w.init.low, w.init.high);
        await handle.write(chunkBytes, 0, n * 4, position);
        position += n * 4;
        done += n * 4;
        onProgress?.(done, total);
      }
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  return places;
}

/**
 * Writes `graph` into the new directory `outDir` (refused if it exists) as model.onnx + model.onnx.data.
 * Every weight is a float32 tensor drawn from a stream seeded by `seed` and its name.
 */
export async function writeZooModel(
  graph: GraphBuilder,
  outDir: string,
  options: { seed: number; metadata?: Record<string, string>; onProgress?: WriteProgress },
): Promise<WrittenModel> {
  await writeOutputDir(outDir, async (dir) => {
    const places = await writeWeights(
      graph.weights,
      join(dir, ZOO_DATA_FILE),
      options.seed,
      options.onProgress,
    );
    const model = graph.toModel({ ...options.metadata, "cicada.seed": String(options.seed) });
    for (const t of model.graph!.initializer as TensorProto[]) {
      const place = places.get(t.name!);
      if (place) setExternal(t, { location: ZOO_DATA_FILE, ...place });
    }
    const handle = await open(join(dir, "model.onnx"), "w");
    try {
      await handle.write(encodeModel(model));
      await handle.sync();
    } finally {
      await handle.close();
    }
  });
  return {
    modelPath: join(outDir, "model.onnx"),
    dataPath: join(outDir, ZOO_DATA_FILE),
    weightBytes: graph.weightBytes(),
    parameterCount: graph.parameterCount(),
  };
}

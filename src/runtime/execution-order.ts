// Lays an optimised graph's external data out in the order its nodes first read it. onnxruntime saves an
// optimised model's initializers in hash order (measured on ResNet-152's whole graph: 284 of 289 out of
// order), so reading the data file front to back would deliver the last layer's weights as early as the
// first's. In execution order, a retrieval that reads the file sequentially stays ahead of an execution
// that started before the weights were all in memory, which is what cicada's whole-model plan does.
import { randomBytes } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { CicadaError } from "../errors.js";
import { externalLocation, isExternal, readOnnxFile, setExternal, writeOnnxFile } from "../format/onnx-io.js";
import type { GraphProto, TensorProto } from "../format/onnx-types.js";

/** Tensors of at least a page start on a page (as onnxruntime aligns its own large ones); others on 64 bytes. */
const PAGE = 4096;
const SMALL_ALIGN = 64;
const COPY_CHUNK = 8 << 20;

function align(offset: number, length: number): number {
  const a = length >= PAGE ? PAGE : SMALL_ALIGN;
  return Math.ceil(offset / a) * a;
}

/** Names read by a graph's nodes in order, including those read inside subgraphs (If, Loop, Scan). */
function* readsInOrder(graph: GraphProto): Generator<string> {
  for (const node of graph.node ?? []) {
    for (const name of node.input ?? []) if (name) yield name;
    for (const a of node.attribute ?? []) {
      if (a.g) yield* readsInOrder(a.g);
      for (const g of a.graphs ?? []) yield* readsInOrder(g);
    }
  }
}

/**
 * The external initializers of `graph` in the order the nodes first read them, then any never read (in
 * file order). Every one of them must live in `dataFile`.
 */
export function executionOrder(graph: GraphProto, dataFile: string, source: string): TensorProto[] {
  const external = new Map<string, TensorProto>();
  for (const t of graph.initializer ?? []) {
    if (!isExternal(t)) continue;
    const { location } = externalLocation(t, source);
    if (location !== dataFile) {
      throw new CicadaError(
        "E_ONNX_EXTERNAL_DATA",
        `${source}: tensor '${t.name}' lives in '${location}', expected '${dataFile}'`,
      );
    }
    external.set(t.name ?? "", t);
  }
  const ordered: TensorProto[] = [];
  for (const name of readsInOrder(graph)) {
    const t = external.get(name);
    if (!t) continue;
    ordered.push(t);
    external.delete(name);
  }
  const rest = [...external.values()].sort(
    (a, b) => externalLocation(a, source).offset - externalLocation(b, source).offset,
  );
  return [...ordered, ...rest];
}

/**
 * Rewrites `modelPath`'s external data file (`dataFile`, beside it) in execution order and points the
 * model at the new offsets. Meant for a build directory nobody reads yet: the data file is replaced first,
 * then the model.
 */
export async function layOutInExecutionOrder(modelPath: string, dataFile: string): Promise<void> {
  const { model } = await readOnnxFile(modelPath);
  const graph = model.graph;
  if (!graph) throw new CicadaError("E_ONNX_PARSE", `${modelPath}: the model has no graph`);
  const tensors = executionOrder(graph, dataFile, modelPath);
  const dir = dirname(modelPath);
  const dataPath = join(dir, dataFile);
  const tmp = join(dir, `.${basename(dataFile)}.${process.pid}-${randomBytes(4).toString("hex")}`);
  const source = await open(dataPath, "r");
  const target = await open(tmp, "w");
  try {
    const buffer = Buffer.allocUnsafe(COPY_CHUNK);
    let at = 0;
    for (const t of tensors) {
      const { offset, length } = externalLocation(t, modelPath);
      at = align(at, length);
      for (let done = 0; done < length;) {
        const n = Math.min(COPY_CHUNK, length - done);
        const { bytesRead } = await source.read(buffer, 0, n, offset + done);
        if (bytesRead !== n) {
          throw new CicadaError(
            "E_ONNX_EXTERNAL_DATA",
            `${dataPath}: tensor '${t.name}' needs bytes ${offset}..${offset + length}, the file ends first`,
          );
        }
        await target.write(buffer, 0, n, at + done);
        done += n;
      }
      setExternal(t, { location: dataFile, offset: at, length });
      at += length;
    }
    await target.truncate(at);
    await target.sync();
  } catch (e) {
    await target.close();
    await rm(tmp, { force: true });
    throw e;
  } finally {
    await source.close();
  }
  await target.close();
  await rename(tmp, dataPath);
  await writeOnnxFile(modelPath, model);
}

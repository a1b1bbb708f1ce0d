// Test helper: tiny models that exercise what the importer must handle, written into a test's temp dir.
// The MLP comes from the zoo's GraphBuilder + writeZooModel (external data); the others are hand-made
// ModelProtos with embedded weights in raw_data and in float_data, Constant nodes, residual connections,
// a graph input read by many stages, a shared weight, bool and int64 tensors crossing stages, two graph
// outputs produced far apart, and an If node whose branches read outer-scope tensors.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { encodeModel } from "../../src/format/onnx-io.js";
import {
  AttributeType,
  DataType,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from "../../src/format/onnx-types.js";
import type { HostTensor } from "../../src/runtime/host-tensor.js";
import { GraphBuilder, uniformStd, valueInfo } from "../../src/zoo/graph-builder.js";
import { writeZooModel } from "../../src/zoo/model-writer.js";

/** Width of the hand-made models: a [W, W] float32 matrix is exactly 1024 bytes, the weight threshold. */
export const W = 16;

/** Deterministic values in [-scale, scale). */
export function values(n: number, seed: number, scale = 0.5): Float32Array {
  const out = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = ((s / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

/** A float32 tensor stored as raw_data or as float_data. */
export function floatTensor(name: string, dims: number[], data: Float32Array, typed = false): TensorProto {
  return typed
    ? { name, dims, dataType: DataType.FLOAT, floatData: [...data] }
    : { name, dims, dataType: DataType.FLOAT, rawData: new Uint8Array(data.buffer.slice(0)) };
}

/** A tensor value_info with a fixed or symbolic shape. */
export const vi = valueInfo;

/** A node (name = its first output). */
export function node(
  opType: string,
  input: string[],
  output: string[],
  attribute: NodeProto["attribute"] = [],
): NodeProto {
  return { name: output[0], opType, input, output, attribute };
}

/** A Constant node holding a float32 tensor. */
export function constant(output: string, data: number[], dims: number[] = [data.length]): NodeProto {
  return node(
    "Constant",
    [],
    [output],
    [{ name: "value", type: AttributeType.TENSOR, t: floatTensor("", dims, new Float32Array(data)) }],
  );
}

/** A model of the default opset around `graph`. */
export function modelOf(graph: GraphProto, metadata: Record<string, string> = {}): ModelProto {
  return {
    irVersion: 8,
    producerName: "importer-test",
    opsetImport: [{ domain: "", version: 17 }],
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    graph,
  };
}

/** Writes `model` as `<dir>/<file>` with embedded data; returns the path. */
export async function saveModel(dir: string, file: string, model: ModelProto): Promise<string> {
  const path = join(dir, file);
  await writeFile(path, encodeModel(model));
  return path;
}

/** The float input x [1, W]. */
export function inputX(seed = 7, width = W): Record<string, HostTensor> {
  return { x: { dtype: "float32", dims: [1, width], data: values(width, seed, 1) } };
}

/**
 * `layers` x (MatMul [width, width] + Add bias + Relu) written by writeZooModel (external data). Each
 * matrix is a weight; each bias (width floats) too when width >= 256.
 */
export async function writeMlp(dir: string, layers: number, width: number): Promise<string> {
  const b = new GraphBuilder("mlp");
  let x = b.input("x", DataType.FLOAT, [1, width]);
  for (let i = 0; i < layers; i++) {
    const w = b.weight(`fc${i}.weight`, [width, width], uniformStd(1 / Math.sqrt(width)));
    const bias = b.weight(`fc${i}.bias`, [width], uniformStd(0.1));
    x = b.node("Relu", [b.node("Add", [b.node("MatMul", [x, w], {}, `fc${i}`), bias])], {}, `relu${i}`);
  }
  b.renameLastOutput("y");
  b.output("y", DataType.FLOAT, [1, width]);
  const out = join(dir, "mlp");
  await writeZooModel(b, out, { seed: 3, metadata: { "cicada.family": "mlp" } });
  return join(out, "model.onnx");
}

/**
 * Six residual layers h_i = h_{i-1} + 0.5·relu(h_{i-1}·W_i + b_i), with: matrices alternately in raw_data
 * and float_data; the Constant 0.5 read by every layer; x added again in layers 2 and 5 (a graph input read
 * by many stages); layer 6 reusing W_0 (a shared weight); a bool mask (x > 0) and an int64 shape computed
 * at the start and read at the end; outputs `mid` (after layer 3) and `y` (the end).
 */
export function residualModel(): ModelProto {
  const init: TensorProto[] = [];
  const nodes: NodeProto[] = [constant("half", [0.5], []), constant("zero", [0], [])];
  nodes.push(node("Greater", ["x", "zero"], ["mask"]), node("Shape", ["x"], ["x_shape"]));
  init.push(floatTensor("W0", [W, W], values(W * W, 100)));
  nodes.push(node("MatMul", ["x", "W0"], ["h0"]));
  let h = "h0";
  for (let i = 1; i <= 6; i++) {
    const weight = i === 6 ? "W0" : `W${i}`;
    if (i !== 6) init.push(floatTensor(weight, [W, W], values(W * W, 100 + i), i % 2 === 0));
    init.push(floatTensor(`b${i}`, [W], values(W, 200 + i, 0.1), true));
    nodes.push(
      node("MatMul", [h, weight], [`mm${i}`]),
      node("Add", [`mm${i}`, `b${i}`], [`pre${i}`]),
      node("Relu", [`pre${i}`], [`act${i}`]),
      node("Mul", [`act${i}`, "half"], [`scaled${i}`]),
      node("Add", [h, `scaled${i}`], [`h${i}`]),
    );
    h = `h${i}`;
    if (i === 2 || i === 5) {
      nodes.push(node("Add", [h, "x"], [`hx${i}`]));
      h = `hx${i}`;
    }
    if (i === 3) nodes.push(node("Identity", [h], ["mid"]));
  }
  nodes.push(
    node("Mul", [h, "half"], ["h_half"]),
    node("Where", ["mask", h, "h_half"], ["masked"]),
    node("Reshape", ["masked", "x_shape"], ["y"]),
  );
  return modelOf({
    name: "residual",
    node: nodes,
    initializer: init,
    input: [vi("x", DataType.FLOAT, [1, W])],
    output: [vi("mid", DataType.FLOAT, [1, W]), vi("y", DataType.FLOAT, [1, W])],
  });
}

/**
 * x -> relu(x·W0)·W1 -> If(flag) { then: ·W_then (outer-scope weight); else: ·c (outer-scope Constant) }
 * -> relu -> ·W2. Branch outputs are typed; nothing else is.
 */
export function ifModel(): ModelProto {
  const branch = (name: string, nodes: NodeProto[], output: string): GraphProto => ({
    name,
    node: nodes,
    output: [vi(output, DataType.FLOAT, [1, W])],
  });
  const thenBranch = branch("then", [node("MatMul", ["h2", "W_then"], ["then_out"])], "then_out");
  const elseBranch = branch("else", [node("Mul", ["h2", "c"], ["else_out"])], "else_out");
  return modelOf({
    name: "with-if",
    node: [
      constant("c", [-2]),
      node("MatMul", ["x", "W0"], ["h1"]),
      node("Relu", ["h1"], ["r1"]),
      node("MatMul", ["r1", "W1"], ["h2"]),
      node(
        "If",
        ["flag"],
        ["chosen"],
        [
          { name: "then_branch", type: AttributeType.GRAPH, g: thenBranch },
          { name: "else_branch", type: AttributeType.GRAPH, g: elseBranch },
        ],
      ),
      node("Relu", ["chosen"], ["r2"]),
      node("MatMul", ["r2", "W2"], ["y"]),
    ],
    initializer: ["W0", "W1", "W_then", "W2"].map((n, i) => floatTensor(n, [W, W], values(W * W, 300 + i))),
    input: [vi("x", DataType.FLOAT, [1, W]), vi("flag", DataType.BOOL, [])],
    output: [vi("y", DataType.FLOAT, [1, W])],
  });
}

/**
 * x -> relu(x·W0) -> Loop(3 times) { v = tanh(v·W_loop + b) with W_loop, b from the outer scope } -> ·W2.
 * The loop's trip count is a replicated Constant.
 */
export function loopModel(): ModelProto {
  const body: GraphProto = {
    name: "body",
    input: [
      vi("iter", DataType.INT64, []),
      vi("cond_in", DataType.BOOL, []),
      vi("v_in", DataType.FLOAT, [1, W]),
    ],
    node: [
      node("Identity", ["cond_in"], ["cond_out"]),
      node("MatMul", ["v_in", "W_loop"], ["vw"]),
      node("Add", ["vw", "b_loop"], ["vb"]),
      node("Tanh", ["vb"], ["v_out"]),
    ],
    output: [vi("cond_out", DataType.BOOL, []), vi("v_out", DataType.FLOAT, [1, W])],
  };
  const trips: NodeProto = node(
    "Constant",
    [],
    ["trips"],
    [
      {
        name: "value",
        type: AttributeType.TENSOR,
        t: { dims: [], dataType: DataType.INT64, int64Data: [3] },
      },
    ],
  );
  const yes: NodeProto = node(
    "Constant",
    [],
    ["yes"],
    [{ name: "value", type: AttributeType.TENSOR, t: { dims: [], dataType: DataType.BOOL, int32Data: [1] } }],
  );
  return modelOf({
    name: "with-loop",
    node: [
      trips,
      yes,
      node("MatMul", ["x", "W0"], ["h1"]),
      node("Relu", ["h1"], ["r1"]),
      node(
        "Loop",
        ["trips", "yes", "r1"],
        ["looped"],
        [{ name: "body", type: AttributeType.GRAPH, g: body }],
      ),
      node("MatMul", ["looped", "W2"], ["y"]),
    ],
    initializer: [
      ...["W0", "W_loop", "W2"].map((n, i) => floatTensor(n, [W, W], values(W * W, 400 + i))),
      floatTensor("b_loop", [W], values(W, 500, 0.1)),
    ],
    input: [vi("x", DataType.FLOAT, [1, W])],
    output: [vi("y", DataType.FLOAT, [1, W])],
  });
}

// A small builder for ONNX graphs whose weights are generated, not stored: the zoo describes an
// architecture node by node and declares each weight with its initialisation; the weights' bytes are
// produced only when the model is written (see model-writer.ts), one chunk at a time.
import {
  AttributeType,
  DataType,
  type AttributeProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from "../format/onnx-types.js";

/** How a weight is initialised: uniform in [low, high), or a constant value. */
export type WeightInit = { kind: "uniform"; low: number; high: number } | { kind: "constant"; value: number };

/** Uniform initialisation with the given standard deviation (bound = std·√3). */
export function uniformStd(std: number): WeightInit {
  const bound = std * Math.sqrt(3);
  return { kind: "uniform", low: -bound, high: bound };
}

/** A float32 weight declared in the graph, generated at write time. */
export interface WeightSpec {
  name: string;
  dims: number[];
  init: WeightInit;
  /** True for trainable parameters (counted in the published parameter count); false for buffers. */
  isParameter: boolean;
}

export type AttrValue =
  number | string | number[] | string[] | { floats: number[] } | { float: number } | TensorProto;

function attribute(name: string, value: AttrValue): AttributeProto {
  if (typeof value === "number") {
    return Number.isInteger(value)
      ? { name, type: AttributeType.INT, i: value }
      : { name, type: AttributeType.FLOAT, f: value };
  }
  if (typeof value === "string") return { name, type: AttributeType.STRING, s: Buffer.from(value) };
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v === "string")) {
      return { name, type: AttributeType.STRINGS, strings: value.map((v) => Buffer.from(v)) };
    }
    return { name, type: AttributeType.INTS, ints: value };
  }
  if ("floats" in value) return { name, type: AttributeType.FLOATS, floats: value.floats };
  if ("float" in value) return { name, type: AttributeType.FLOAT, f: value.float };
  return { name, type: AttributeType.TENSOR, t: value };
}

/** A tensor value_info with a fixed or symbolic shape. */
export function valueInfo(name: string, elemType: number, dims: (number | string)[]): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/** Builds one ONNX graph. Names are made unique with a counter where the caller does not give one. */
export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly inputs: ValueInfoProto[] = [];
  readonly outputs: ValueInfoProto[] = [];
  readonly weights: WeightSpec[] = [];
  /** Small constant initializers (shapes, axes, scalars) kept inline in the model. */
  readonly constants: TensorProto[] = [];
  private counter = 0;
  private readonly names = new Set<string>();

  constructor(
    readonly name: string,
    readonly opset = 17,
  ) {}

  private unique(base: string): string {
    let name = base;
    while (this.names.has(name)) name = `${base}_${++this.counter}`;
    this.names.add(name);
    return name;
  }

  /** Declares a graph input. */
  input(name: string, elemType: number, dims: (number | string)[]): string {
    this.inputs.push(valueInfo(this.unique(name), elemType, dims));
    return name;
  }

  /** Declares a graph output (the tensor must be produced by a node). */
  output(name: string, elemType: number, dims: (number | string)[]): void {
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /** Declares a float32 weight; returns its tensor name. */
  weight(name: string, dims: number[], init: WeightInit, isParameter = true): string {
    const unique = this.unique(name);
    this.weights.push({ name: unique, dims, init, isParameter });
    return unique;
  }

  /** An int64 constant initializer (shapes, axes, indices). */
  int64(name: string, values: number[], dims: number[] = [values.length]): string {
    const data = new BigInt64Array(values.map((v) => BigInt(v)));
    const unique = this.unique(name);
    this.constants.push({
      name: unique,
      dims,
      dataType: DataType.INT64,
      rawData: new Uint8Array(data.buffer),
    });
    return unique;
  }

  /** A float32 constant initializer (scalars such as epsilons and scales). */
  float(name: string, values: number[], dims: number[] = [values.length]): string {
    const data = new Float32Array(values);
    const unique = this.unique(name);
    this.constants.push({
      name: unique,
      dims,
      dataType: DataType.FLOAT,
      rawData: new Uint8Array(data.buffer),
    });
    return unique;
  }

  /** Adds a node with `outputCount` outputs; returns their names. */
  nodeN(
    opType: string,
    inputs: string[],
    outputCount: number,
    attrs: Record<string, AttrValue> = {},
    name?: string,
  ): string[] {
    const nodeName = this.unique(name ?? `${opType}`);
    const outputs = Array.from({ length: outputCount }, (_, i) =>
      this.unique(outputCount === 1 ? `${nodeName}_out` : `${nodeName}_out${i}`),
    );
    this.nodes.push({
      name: nodeName,
      opType,
      input: inputs,
      output: outputs,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outputs;
  }

  /** Adds a single-output node; returns the output name. */
  node(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, name?: string): string {
    return this.nodeN(opType, inputs, 1, attrs, name)[0]!;
  }

  /** Renames the output of the last node (used to give graph outputs stable names). */
  renameLastOutput(to: string): string {
    const last = this.nodes.at(-1);
    if (!last?.output?.[0]) throw new Error("no node to rename");
    this.names.add(to);
    last.output[0] = to;
    return to;
  }

  /** Number of trainable parameters (the figure papers and model cards publish). */
  parameterCount(): number {
    return this.weights
      .filter((w) => w.isParameter)
      .reduce((n, w) => n + w.dims.reduce((a, b) => a * b, 1), 0);
  }

  /** Bytes of all generated weights (float32). */
  weightBytes(): number {
    return this.weights.reduce((n, w) => n + 4 * w.dims.reduce((a, b) => a * b, 1), 0);
  }

  /** The ModelProto without weight data: weights become initializers filled in by the writer. */
  toModel(metadata: Record<string, string> = {}): ModelProto {
    return {
      irVersion: 8,
      producerName: "cicada-zoo",
      producerVersion: "0.1.0",
      opsetImport: [{ domain: "", version: this.opset }],
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
      graph: {
        name: this.name,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: [
          ...this.weights.map((w) => ({ name: w.name, dims: w.dims, dataType: DataType.FLOAT })),
          ...this.constants,
        ],
      },
    };
  }
}

// Element types and shapes of the tensors that cross stage boundaries. A stage graph must declare the
// type of each of its inputs and outputs, but exporters only promise types for graph inputs and outputs:
// value_info is optional. So types come from the model where it says them, and are otherwise propagated
// through the graph with the rule "an output has its first input's type" and a table of the operators
// for which that rule is wrong. Shapes are only copied, never inferred: null when the model does not say.
import { CicadaError } from "../errors.js";
import {
  AttributeType,
  DataType,
  type AttributeProto,
  type GraphProto,
  type NodeProto,
  type TypeProto,
} from "../format/onnx-types.js";
import type { GraphAnalysis } from "./graph-analysis.js";

/** A dimension as the manifest records it: a size, a symbolic name, or null when unknown. */
export type Dim = number | string | null;

/** What is known of a tensor: its ONNX element type and, if the model says, its shape. */
export interface TensorType {
  elemType: number;
  shape: Dim[] | null;
}

const INT64_OUTPUTS = new Set(["Shape", "Size", "NonZero", "ArgMax", "ArgMin", "NonMaxSuppression"]);
const BOOL_OUTPUTS = new Set([
  "Equal",
  "Less",
  "Greater",
  "LessOrEqual",
  "GreaterOrEqual",
  "Not",
  "And",
  "Or",
  "Xor",
  "IsNaN",
  "IsInf",
  "RegexFullMatch",
]);

function attr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute?.find((a) => a.name === name);
}

/** The declared shape of a tensor type: null without a shape field; [] for a scalar (a shape without dims). */
export function shapeOf(type: TypeProto | undefined): Dim[] | null {
  const shape = type?.tensorType?.shape;
  if (!shape) return null;
  return (shape.dim ?? []).map((d) => d.dimValue ?? (d.dimParam ? d.dimParam : null));
}

/** The type a Constant node's value has. */
function constantType(node: NodeProto): number | undefined {
  for (const a of node.attribute ?? []) {
    switch (a.name) {
      case "value":
        return a.t?.dataType;
      case "sparse_value":
        return (a as { sparseTensor?: { values?: { dataType?: number } } }).sparseTensor?.values?.dataType;
      case "value_float":
      case "value_floats":
        return DataType.FLOAT;
      case "value_int":
      case "value_ints":
        return DataType.INT64;
      case "value_string":
      case "value_strings":
        return DataType.STRING;
    }
  }
  return undefined;
}

function subgraphOutputType(node: NodeProto, graphAttr: string, index: number): number | undefined {
  const g: GraphProto | undefined = attr(node, graphAttr)?.g;
  return g?.output?.[index]?.type?.tensorType?.elemType || undefined;
}

/**
 * The element type of output `index` of `node`, given the types of its inputs (`typeOf`), or undefined
 * when it cannot be told. The exceptions to "first input's type", for the standard domain.
 */
export function outputElemType(
  node: NodeProto,
  index: number,
  typeOf: (name: string) => number | undefined,
): number | undefined {
  const op = node.opType ?? "";
  const input = (i: number): number | undefined => {
    const name = node.input?.[i];
    return name ? typeOf(name) : undefined;
  };
  const intAttr = (name: string): number | undefined => {
    const a = attr(node, name);
    return a?.type === AttributeType.INT && a.i ? a.i : undefined;
  };
  const firstInput = (): number | undefined => {
    const name = node.input?.find((i) => i);
    return name ? typeOf(name) : undefined;
  };
  if (node.domain && node.domain !== "ai.onnx") return firstInput();
  if (INT64_OUTPUTS.has(op)) return DataType.INT64;
  if (BOOL_OUTPUTS.has(op)) return DataType.BOOL;
  switch (op) {
    case "Cast":
      return intAttr("to");
    case "CastLike":
      return input(1);
    case "Constant":
      return constantType(node);
    case "ConstantOfShape":
      return attr(node, "value")?.t?.dataType ?? DataType.FLOAT;
    case "TopK":
    case "MaxPool":
      return index === 1 ? DataType.INT64 : input(0);
    case "Unique":
      return index === 0 ? input(0) : DataType.INT64;
    case "Dropout":
      return index === 1 ? DataType.BOOL : input(0);
    case "LayerNormalization":
      return index === 0 ? input(0) : (intAttr("stash_type") ?? DataType.FLOAT);
    case "Where":
      return input(1);
    case "OneHot":
      return input(2);
    case "DequantizeLinear":
      return intAttr("output_dtype") ?? input(1) ?? DataType.FLOAT;
    case "QuantizeLinear":
      return intAttr("output_dtype") ?? input(2) ?? DataType.UINT8;
    case "DynamicQuantizeLinear":
      return index === 1 ? DataType.FLOAT : DataType.UINT8;
    case "MatMulInteger":
    case "ConvInteger":
      return DataType.INT32;
    case "QLinearMatMul":
    case "QLinearConv":
      return input(7);
    case "EyeLike":
    case "RandomNormalLike":
    case "RandomUniformLike":
    case "Bernoulli":
      return intAttr("dtype") ?? input(0);
    case "RandomNormal":
    case "RandomUniform":
      return intAttr("dtype") ?? DataType.FLOAT;
    case "Multinomial":
      return intAttr("dtype") ?? DataType.INT32;
    case "TfIdfVectorizer":
      return DataType.FLOAT;
    case "If":
      return subgraphOutputType(node, "then_branch", index) ?? subgraphOutputType(node, "else_branch", index);
    case "Loop":
      // Body outputs: the condition, then the loop-carried values and scan outputs in node-output order.
      return subgraphOutputType(node, "body", index + 1);
    case "Scan":
      return subgraphOutputType(node, "body", index);
    default:
      return firstInput();
  }
}

/**
 * Types of every tensor of the main graph that the model declares (graph inputs/outputs, value_info,
 * initializers) or that propagation through `nodes` (in topological order) determines.
 */
export function inferTensorTypes(a: GraphAnalysis): Map<string, TensorType> {
  const types = new Map<string, TensorType>();
  const declare = (name: string | undefined, type: TypeProto | undefined) => {
    const elemType = type?.tensorType?.elemType;
    if (!name || !elemType) return;
    const known = types.get(name);
    types.set(name, { elemType, shape: shapeOf(type) ?? known?.shape ?? null });
  };
  for (const v of a.graph.valueInfo ?? []) declare(v.name, v.type);
  for (const v of a.graph.input ?? []) declare(v.name, v.type);
  for (const v of a.graph.output ?? []) declare(v.name, v.type);
  for (const [name, t] of a.initializers) {
    types.set(name, { elemType: t.dataType ?? 0, shape: [...(t.dims ?? [])] });
  }
  const typeOf = (name: string) => types.get(name)?.elemType;
  const visit = (n: NodeProto) => {
    (n.output ?? []).forEach((o, i) => {
      if (!o || types.get(o)?.elemType) return;
      const elemType = outputElemType(n, i, typeOf);
      if (elemType) types.set(o, { elemType, shape: null });
    });
  };
  // Constants first: they are replicated, so they precede whatever reads them in any stage.
  for (const c of new Set(a.constants.values())) visit(c.node);
  for (const n of a.order) visit(n.node);
  return types;
}

/** The type of tensor `name` crossing a stage boundary; E_ONNX_UNSUPPORTED if it cannot be determined. */
export function requireType(types: Map<string, TensorType>, name: string, a: GraphAnalysis): TensorType {
  const t = types.get(name);
  if (t?.elemType) return t;
  const p = a.producer.get(name);
  const by = p !== undefined ? a.order[p]!.label : "the graph";
  throw new CicadaError(
    "E_ONNX_UNSUPPORTED",
    `${a.source}: cannot determine the element type of tensor '${name}' (written by ${by}); add it to the model's value_info`,
  );
}

// The model's interface as the manifest records it: graph inputs (with the example shape and value range
// a run without given inputs uses) and graph outputs. Shared by the importer and by `cicada run` on a plain
// .onnx file, so both generate the same inputs for the same model.
import { CicadaError } from "../errors.js";
import type { GraphInput, TensorSpec } from "../format/manifest.js";
import { dtypeName, getMetadata, type ModelProto, type ValueInfoProto } from "../format/onnx-types.js";
import { shapeOf } from "./dtype-inference.js";

/** Example value range of a float input without `cicada.example.<name>.range` metadata: [0, 1). */
export const DEFAULT_FLOAT_RANGE: [number, number] = [0, 1];
/** Example value range of an integer or bool input without metadata: [0, 2) (valid ids, masks, flags). */
export const DEFAULT_INTEGER_RANGE: [number, number] = [0, 2];

/** The manifest spec of a tensor with a declared type; E_ONNX_UNSUPPORTED for non-tensor or exotic types. */
export function tensorSpecOf(v: ValueInfoProto, source: string): TensorSpec {
  const tensor = v.type?.tensorType;
  const dtype = dtypeName(tensor?.elemType ?? 0);
  if (!tensor || !dtype) {
    throw new CicadaError(
      "E_ONNX_UNSUPPORTED",
      `${source}: '${v.name}' is ${tensor ? `a tensor of element type ${tensor.elemType}` : "not a tensor (sequence, map or optional)"}; bundles carry tensors of standard numeric or bool types only`,
    );
  }
  return { name: v.name!, dtype, shape: shapeOf(v.type) };
}

function parseNumbers(text: string, key: string, source: string): number[] {
  const parts = text.trim() === "" ? [] : text.split(",").map((p) => Number(p.trim()));
  if (parts.some((x) => !Number.isFinite(x))) {
    throw new CicadaError(
      "E_ONNX_PARSE",
      `${source}: metadata ${key} is '${text}', expected comma-separated numbers`,
    );
  }
  return parts;
}

/**
 * The example of one input: metadata `cicada.example.<name>.shape` ("1,128") and `.range` ("0,32000")
 * when the model has them; otherwise fixed dims as declared, symbolic or unknown dims 1 (unknown rank:
 * [1]), and values in [0, 1) for floats, [0, 2) for integers and bools.
 */
function exampleOf(model: ModelProto, spec: TensorSpec, source: string): GraphInput["example"] {
  const shapeKey = `cicada.example.${spec.name}.shape`;
  const rangeKey = `cicada.example.${spec.name}.range`;
  const shapeText = getMetadata(model, shapeKey);
  const rangeText = getMetadata(model, rangeKey);
  let shape = spec.shape ? spec.shape.map((d) => (typeof d === "number" ? d : 1)) : [1];
  if (shapeText !== undefined) {
    shape = parseNumbers(shapeText, shapeKey, source);
    const fits =
      shape.every((d) => Number.isInteger(d) && d >= 0) &&
      (!spec.shape ||
        (spec.shape.length === shape.length &&
          spec.shape.every((d, i) => typeof d !== "number" || d === shape[i])));
    if (!fits) {
      throw new CicadaError(
        "E_ONNX_PARSE",
        `${source}: metadata ${shapeKey} is [${shapeText}] but input '${spec.name}' has shape [${(spec.shape ?? []).map((d) => d ?? "?").join(",")}]`,
      );
    }
  }
  let range: [number, number] = spec.dtype.startsWith("float") ? DEFAULT_FLOAT_RANGE : DEFAULT_INTEGER_RANGE;
  if (rangeText !== undefined) {
    const r = parseNumbers(rangeText, rangeKey, source);
    if (r.length !== 2 || !(r[0]! < r[1]!)) {
      throw new CicadaError(
        "E_ONNX_PARSE",
        `${source}: metadata ${rangeKey} is '${rangeText}', expected 'low,high' with low < high`,
      );
    }
    range = [r[0]!, r[1]!];
  }
  return { shape, range: [...range] };
}

/** The model's inputs (graph inputs that are not initializers) with their examples. */
export function graphInputsOf(model: ModelProto, source = "<model>"): GraphInput[] {
  const graph = model.graph!;
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  const inputs = (graph.input ?? []).filter((v) => !initializers.has(v.name));
  if (inputs.length === 0) {
    throw new CicadaError(
      "E_ONNX_UNSUPPORTED",
      `${source} has no graph inputs (only constants): a bundle needs at least one input to run on`,
    );
  }
  return inputs.map((v) => {
    const spec = tensorSpecOf(v, source);
    return { ...spec, example: exampleOf(model, spec, source) };
  });
}

/** The model's outputs. */
export function graphOutputsOf(model: ModelProto, source = "<model>"): TensorSpec[] {
  return (model.graph!.output ?? []).map((v) => tensorSpecOf(v, source));
}

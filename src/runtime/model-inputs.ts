// Inputs of a run: checked against the model's declared inputs before any loading work starts (a wrong
// request must not cost a cold start), read from a JSON file, or generated from the example shapes.
import { readFile } from "node:fs/promises";
import { CicadaError } from "../errors.js";
import type { GraphInput, TensorSpec } from "../format/manifest.js";
import { SeededRandom } from "../util/seeded-random.js";
import { halfFloatEncoder } from "../util/half-float.js";
import { typedArrayFor, type HostTensor } from "./host-tensor.js";
import { checkedElementCount, isTransferableDType, tensorsFromJson } from "./tensor-json.js";

export { MAX_INPUT_ELEMENTS, tensorsFromJson, tensorsToJson } from "./tensor-json.js";

/** Refuses (E_INPUT_DTYPE) an input whose element type the runtime cannot pass to onnxruntime. */
function checkTransferable(spec: TensorSpec, model: string): void {
  if (!isTransferableDType(spec.dtype)) {
    throw new CicadaError(
      "E_INPUT_DTYPE",
      `${model}: input '${spec.name}' has element type ${spec.dtype}, which the runtime cannot pass to onnxruntime (supported: numeric and bool tensors)`,
    );
  }
}

/** Checks names, element types and shapes of `feeds` against `specs`; symbolic dims accept any size. */
export function validateInputs(
  specs: readonly TensorSpec[],
  feeds: Record<string, HostTensor>,
  model: string,
): void {
  const known = new Set(specs.map((s) => s.name));
  for (const name of Object.keys(feeds)) {
    if (!known.has(name)) {
      throw new CicadaError(
        "E_INPUT_NAME",
        `${model} has no input '${name}' (inputs: ${[...known].join(", ")})`,
      );
    }
  }
  for (const spec of specs) {
    checkTransferable(spec, model);
    const t = feeds[spec.name];
    if (!t) throw new CicadaError("E_INPUT_NAME", `${model}: input '${spec.name}' is missing`);
    if (t.dtype !== spec.dtype) {
      throw new CicadaError(
        "E_INPUT_DTYPE",
        `${model}: input '${spec.name}' must be ${spec.dtype}, found ${t.dtype}`,
      );
    }
    if (t.dims.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new CicadaError(
        "E_INPUT_SHAPE",
        `${model}: input '${spec.name}' has shape [${t.dims.join(",")}]: dimensions must be non-negative integers`,
      );
    }
    const elements = checkedElementCount(t.dims, `${model}: input '${spec.name}'`);
    if (elements !== t.data.length) {
      throw new CicadaError(
        "E_INPUT_SHAPE",
        `${model}: input '${spec.name}' has shape [${t.dims.join(",")}] but ${t.data.length} values`,
      );
    }
    if (spec.shape) {
      const shape = spec.shape;
      const ok =
        t.dims.length === shape.length && shape.every((d, i) => typeof d !== "number" || d === t.dims[i]);
      if (!ok) {
        throw new CicadaError(
          "E_INPUT_SHAPE",
          `${model}: input '${spec.name}' must have shape [${shape.map((d) => d ?? "?").join(",")}], found [${t.dims.join(",")}]`,
        );
      }
    }
  }
}

/**
 * Random inputs with the example shapes and value ranges of the model, from `seed`. Every input is checked
 * first (element type the runtime can pass, example shape within {@link MAX_INPUT_ELEMENTS}), so that a
 * hostile or mistaken example shape (1e5 x 1e5) is refused before anything is allocated; `model` names the
 * model in those errors.
 */
export function randomInputs(
  inputs: readonly GraphInput[],
  seed = 0,
  model = "model",
): Record<string, HostTensor> {
  for (const input of inputs) {
    checkTransferable(input, model);
    checkedElementCount(input.example.shape, `${model}: example of input '${input.name}'`);
  }
  const out: Record<string, HostTensor> = {};
  for (const input of inputs) {
    const dims = input.example.shape;
    const n = dims.reduce((a, b) => a * b, 1);
    const [low, high] = input.example.range;
    const rng = new SeededRandom(seed, input.name);
    const values = new Float32Array(n);
    rng.fillUniform(values, low, high);
    const data = new (typedArrayFor(input.dtype))(n);
    if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
      for (let i = 0; i < n; i++) data[i] = BigInt(Math.min(Math.floor(values[i]!), high - 1));
    } else if (halfFloatEncoder(input.dtype)) {
      const encode = halfFloatEncoder(input.dtype)!;
      for (let i = 0; i < n; i++) data[i] = encode(values[i]!);
    } else if (input.dtype.startsWith("float")) {
      data.set(values);
    } else {
      for (let i = 0; i < n; i++) data[i] = Math.min(Math.floor(values[i]!), high - 1);
    }
    out[input.name] = { dtype: input.dtype, dims: [...dims], data };
  }
  return out;
}

/** Reads an inputs file: `{ "<name>": { "dtype": "float32", "dims": [1,3], "data": [...] } }`. */
export async function readInputsFile(path: string): Promise<Record<string, HostTensor>> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, "utf8"));
  } catch (e) {
    throw new CicadaError("E_USAGE", `cannot read inputs file ${path}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  return tensorsFromJson(json, path);
}

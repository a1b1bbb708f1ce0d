// Inputs of a run: checked against the model's declared inputs before any loading work starts (a wrong
// request must not cost a cold start), read from a JSON file, or generated from the example shapes.
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { CicadaError } from "../errors.js";
import { DTypeSchema, type GraphInput, type TensorSpec } from "../format/manifest.js";
import { SeededRandom } from "../util/seeded-random.js";
import { typedArrayFor, type HostTensor } from "./host-tensor.js";

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
    const t = feeds[spec.name];
    if (!t) throw new CicadaError("E_INPUT_NAME", `${model}: input '${spec.name}' is missing`);
    if (t.dtype !== spec.dtype) {
      throw new CicadaError(
        "E_INPUT_DTYPE",
        `${model}: input '${spec.name}' must be ${spec.dtype}, found ${t.dtype}`,
      );
    }
    const elements = t.dims.reduce((a, b) => a * b, 1);
    if (t.dims.some((d) => !Number.isInteger(d) || d < 0) || elements !== t.data.length) {
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

/** Random inputs with the example shapes and value ranges of the model, from `seed`. */
export function randomInputs(inputs: readonly GraphInput[], seed = 0): Record<string, HostTensor> {
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
    } else if (input.dtype.startsWith("float")) {
      data.set(values);
    } else {
      for (let i = 0; i < n; i++) data[i] = Math.min(Math.floor(values[i]!), high - 1);
    }
    out[input.name] = { dtype: input.dtype, dims: [...dims], data };
  }
  return out;
}

const InputsFileSchema = z.record(
  z.string(),
  z.object({
    // Types JSON numbers can carry (no half floats, no strings).
    dtype: DTypeSchema.exclude(["float16", "bfloat16", "string"]),
    dims: z.array(z.number().int().nonnegative()),
    data: z.array(z.union([z.number(), z.boolean()])),
  }),
);

/** Converts JSON tensors ({dtype, dims, data: number[]}) to host tensors; `source` names them in errors. */
export function tensorsFromJson(json: unknown, source: string): Record<string, HostTensor> {
  const parsed = InputsFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new CicadaError("E_USAGE", `${source}: field '${issue.path.join(".")}': ${issue.message}`);
  }
  const out: Record<string, HostTensor> = {};
  for (const [name, t] of Object.entries(parsed.data)) {
    const data = new (typedArrayFor(t.dtype))(t.data.length);
    const big = data instanceof BigInt64Array || data instanceof BigUint64Array;
    t.data.forEach((v, i) => {
      const n = Number(v);
      data[i] = big ? BigInt(Math.trunc(n)) : n;
    });
    out[name] = { dtype: t.dtype, dims: t.dims, data };
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

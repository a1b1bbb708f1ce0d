// Tensors in and out of an inference request: the protocol's JSON form (flat or nested row-major arrays)
// and its binary tensor data extension (a JSON header of `Inference-Header-Content-Length` bytes, then each
// binary tensor's raw little-endian bytes in order). Every value is checked against its datatype, every
// size against its shape, and every shape against the limits and the bytes actually present before
// anything is allocated from it, so that what reaches the model host is exactly what the model declares.
// Non-finite floats travel as the strings "NaN", "Infinity" and "-Infinity" (the protobuf JSON convention):
// accepted that way in float inputs, written that way in outputs; a JSON number that overflows is refused.
import { CicadaError } from "../../errors.js";
import type { TensorSpec } from "../../format/manifest.js";
import type { DTypeName } from "../../format/onnx-types.js";
import { typedArrayFor, type HostTensor, type TensorData } from "../../runtime/host-tensor.js";
import { NON_FINITE, INT_RANGES as TENSOR_JSON_INT_RANGES } from "../../runtime/tensor-json.js";
import {
  DATATYPE_OF,
  dtypeOfDatatype,
  elementsOf,
  InferRequestSchema,
  parseOrThrow,
  preview,
  type Parameters,
} from "./protocol-schemas.js";
import { parseJson } from "./request-body.js";

/** An inference request decoded for one model. */
export interface DecodedInfer {
  id?: string;
  parameters: Parameters;
  feeds: Record<string, HostTensor>;
  /** The outputs to return, in order, each as JSON or binary. */
  outputs: { name: string; binary: boolean }[];
}

/** The declared tensors of the model a request is for. */
export interface ModelSignature {
  name: string;
  inputs: readonly TensorSpec[];
  outputs: readonly TensorSpec[];
}

/** Datatypes JSON cannot carry: they travel only as binary data. */
const BINARY_ONLY = new Set<DTypeName>(["float16", "bfloat16", "string"]);

/** Integer ranges of JSON data: 64-bit integers arrive as JSON numbers, exact up to 2^53. */
const INT_RANGES: Partial<Record<DTypeName, [number, number]>> = {
  ...TENSOR_JSON_INT_RANGES,
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint64: [0, Number.MAX_SAFE_INTEGER],
};

const FLOATS = new Set<DTypeName>(["float32", "float64"]);

function bad(message: string): CicadaError {
  return new CicadaError("E_REQUEST", message);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Splits the body at `Inference-Header-Content-Length` and parses the JSON part. */
function splitBody(body: Uint8Array, headerLength: string | null): { json: unknown; binary: Uint8Array } {
  let jsonBytes: Uint8Array = body;
  let binary: Uint8Array = new Uint8Array(0);
  if (headerLength !== null) {
    const n = Number(headerLength);
    if (!/^\d+$/.test(headerLength.trim()) || n > body.byteLength) {
      throw bad(
        `header Inference-Header-Content-Length must be an integer from 0 to the body's ${body.byteLength} bytes, found '${headerLength.slice(0, 40)}'`,
      );
    }
    jsonBytes = body.subarray(0, n);
    binary = body.subarray(n);
  }
  if (jsonBytes.byteLength === 0) throw bad("the request body is empty: expected a JSON inference request");
  let text: string;
  try {
    text = utf8.decode(jsonBytes);
  } catch (e) {
    throw bad(`the request body is not valid JSON: ${(e as Error).message}`);
  }
  return { json: parseJson(text, "inference request"), binary };
}

/**
 * The values of JSON `data` in row-major order: a flat array, or arrays nested exactly as `shape` (every
 * level as long as its dimension, values only at the last); anything else (ragged, deeper or shallower
 * than the shape) is a malformed request (E_REQUEST) naming the place. Iterative: no recursion over the
 * client's nesting.
 */
function flatten(data: unknown, shape: readonly number[], field: string, input: string): unknown[] {
  if (!Array.isArray(data))
    throw bad(`field '${field}': expected an array of values, found ${preview(data)}`);
  if (!data.some(Array.isArray)) return data;
  const out: unknown[] = [];
  const stack: { values: unknown[]; next: number }[] = [];
  const where = () => `${field}${stack.map((l) => `[${l.next - 1}]`).join("")}`;
  const wrong = (what: string) =>
    bad(
      `field '${what}': input '${input}' has shape [${shape.join(",")}], but its nested data ${
        stack.length >= shape.length ? "nests deeper than that" : "does not match it"
      }`,
    );
  const enter = (values: unknown[], at: string) => {
    const depth = stack.length;
    if (depth >= shape.length) throw wrong(at);
    if (values.length !== shape[depth]) {
      throw bad(
        `field '${at}': input '${input}' has shape [${shape.join(",")}], so this level needs ${shape[depth]} entries (dimension ${depth}), found ${values.length}`,
      );
    }
    stack.push({ values, next: 0 });
  };
  enter(data, field);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.next === top.values.length) {
      stack.pop();
      continue;
    }
    const v = top.values[top.next++];
    const last = stack.length === shape.length;
    if (Array.isArray(v) === last) throw wrong(where());
    if (last) out.push(v);
    else enter(v as unknown[], where());
  }
  return out;
}

/** Converts checked JSON values to the typed array of `dtype`. */
function fromJson(dtype: DTypeName, values: unknown[], field: string): TensorData {
  const datatype = DATATYPE_OF[dtype];
  if (BINARY_ONLY.has(dtype)) {
    throw bad(`field '${field}': ${datatype} has no JSON form; send it as binary data (binary_data_size)`);
  }
  const data = new (typedArrayFor(dtype))(values.length);
  const range = INT_RANGES[dtype];
  const float32 = dtype === "float32";
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (dtype === "bool") {
      if (typeof v !== "boolean")
        throw bad(`field '${field}[${i}]': expected true or false, found ${preview(v)}`);
      data[i] = v ? 1 : 0;
    } else if (range) {
      if (typeof v !== "number" || !Number.isInteger(v) || v < range[0] || v > range[1]) {
        throw bad(
          `field '${field}[${i}]': expected a ${datatype} integer from ${range[0]} to ${range[1]}, found ${preview(v)}`,
        );
      }
      data[i] = data instanceof BigInt64Array || data instanceof BigUint64Array ? BigInt(v) : v;
    } else if (typeof v === "string" && FLOATS.has(dtype) && Object.hasOwn(NON_FINITE, v)) {
      data[i] = NON_FINITE[v]!;
    } else if (typeof v !== "number") {
      throw bad(
        `field '${field}[${i}]': expected a number, found ${preview(v)}${FLOATS.has(dtype) ? ' (non-finite values are the strings "NaN", "Infinity", "-Infinity")' : ""}`,
      );
    } else if (!Number.isFinite(v) || (float32 && !Number.isFinite(Math.fround(v)))) {
      throw bad(
        `field '${field}[${i}]': expected a finite ${datatype} number, found one beyond its range (it reads as ${float32 ? Math.fround(v) : v}); send "Infinity" or "-Infinity" to mean that`,
      );
    } else {
      data[i] = v;
    }
  }
  return data;
}

/** Copies `bytes` (little-endian elements) into a fresh, aligned typed array of `dtype`. */
function fromBinary(dtype: DTypeName, bytes: Uint8Array): TensorData {
  const Ctor = typedArrayFor(dtype);
  const data = new Ctor(bytes.byteLength / Ctor.BYTES_PER_ELEMENT);
  new Uint8Array(data.buffer).set(bytes);
  return data;
}

/**
 * Decodes an inference request body for `model`: JSON or JSON header + binary tensors. Element types are
 * checked against the model's declared inputs here (names and shapes by the runtime's validateInputs).
 */
export function decodeInferRequest(
  body: Uint8Array,
  headerLength: string | null,
  model: ModelSignature,
): DecodedInfer {
  const { json, binary } = splitBody(body, headerLength);
  const request = parseOrThrow(InferRequestSchema, json, "inference request");
  const feeds: Record<string, HostTensor> = {};
  let cursor = 0;
  request.inputs.forEach((input, k) => {
    const field = `inputs.${k}`;
    if (Object.hasOwn(feeds, input.name))
      throw bad(`field '${field}.name': input '${input.name}' is given twice`);
    const dtype = dtypeOfDatatype(input.datatype);
    if (!dtype) {
      throw bad(
        `field '${field}.datatype': '${input.datatype.slice(0, 40)}' is not a protocol datatype (${Object.values(DATATYPE_OF).join(", ")})`,
      );
    }
    const spec = model.inputs.find((s) => s.name === input.name);
    if (spec && spec.dtype !== dtype) {
      throw new CicadaError(
        "E_INPUT_DTYPE",
        `model ${model.name}: input '${input.name}' must be ${DATATYPE_OF[spec.dtype]}, found ${input.datatype}`,
      );
    }
    if (dtype === "string") {
      throw new CicadaError(
        "E_INPUT_DTYPE",
        `field '${field}.datatype': input '${input.name}' is BYTES; this server takes numeric and BOOL tensors only`,
      );
    }
    const elements = elementsOf(input.shape, `${field}.shape`);
    const size = input.parameters?.binary_data_size;
    let data: TensorData;
    if (size !== undefined) {
      const need = elements * typedArrayFor(dtype).BYTES_PER_ELEMENT;
      if (typeof size !== "number" || !Number.isSafeInteger(size) || size !== need) {
        throw bad(
          `field '${field}.parameters.binary_data_size': shape [${input.shape.join(",")}] of ${input.datatype} needs ${need} bytes, found ${preview(size)}`,
        );
      }
      if (input.data !== undefined)
        throw bad(`field '${field}.data': binary input '${input.name}' must not have data`);
      if (cursor + size > binary.byteLength) {
        throw bad(
          `input '${input.name}': binary data ends at byte ${cursor + size} after the JSON header, the body has ${binary.byteLength}`,
        );
      }
      data = fromBinary(dtype, binary.subarray(cursor, cursor + size));
      cursor += size;
    } else {
      if (input.data === undefined) throw bad(`field '${field}.data': input '${input.name}' has no data`);
      // Every JSON value takes at least one byte: a shape the body cannot hold is refused before any walk.
      if (elements > body.byteLength) {
        throw new CicadaError(
          "E_INPUT_SHAPE",
          `field '${field}.shape': shape [${input.shape.join(",")}] has ${elements} values, more than the body's ${body.byteLength} bytes can hold`,
        );
      }
      const values = flatten(input.data, input.shape, `${field}.data`, input.name);
      if (values.length !== elements) {
        throw new CicadaError(
          "E_INPUT_SHAPE",
          `model ${model.name}: input '${input.name}' has shape [${input.shape.join(",")}] (${elements} values) but ${values.length} values`,
        );
      }
      data = fromJson(dtype, values, `${field}.data`);
    }
    feeds[input.name] = { dtype, dims: input.shape, data };
  });
  if (cursor !== binary.byteLength) {
    throw bad(
      `the body has ${binary.byteLength} bytes after the JSON header, but the inputs' binary_data_size add up to ${cursor}`,
    );
  }
  return {
    ...(request.id !== undefined ? { id: request.id } : {}),
    parameters: request.parameters ?? {},
    feeds,
    outputs: selectOutputs(request.parameters ?? {}, request.outputs, model),
  };
}

function selectOutputs(
  parameters: Parameters,
  requested: { name: string; parameters?: Parameters | undefined }[] | undefined,
  model: ModelSignature,
): { name: string; binary: boolean }[] {
  const all = parameters.binary_data_output ?? false;
  if (typeof all !== "boolean") {
    throw bad(`field 'parameters.binary_data_output': expected true or false, found ${preview(all)}`);
  }
  const known = new Map(model.outputs.map((o) => [o.name, o]));
  const chosen: { name: string; parameters?: Parameters | undefined }[] =
    requested ?? model.outputs.map((o) => ({ name: o.name }));
  return chosen.map((o, k) => {
    const spec = known.get(o.name);
    if (!spec) {
      throw bad(
        `field 'outputs.${k}.name': model ${model.name} has no output '${o.name}' (outputs: ${[...known.keys()].join(", ")})`,
      );
    }
    const binary = o.parameters?.binary_data ?? all;
    if (typeof binary !== "boolean") {
      throw bad(
        `field 'outputs.${k}.parameters.binary_data': expected true or false, found ${preview(binary)}`,
      );
    }
    // NOTE: FP16/BF16/BYTES have no JSON form in the protocol: they are always returned as binary.
    return { name: o.name, binary: binary || BINARY_ONLY.has(spec.dtype) };
  });
}

/** Outputs serialised: one JSON text per `$response_output`, and the binary chunks in the same order. */
export interface EncodedOutputs {
  parts: string[];
  chunks: Uint8Array[];
}

/** A tensor's values as JSON can carry them: booleans, numbers, and non-finite floats as strings. */
function jsonValues(t: HostTensor): (number | boolean | string)[] {
  const values = t.data as ArrayLike<number | bigint>;
  if (t.dtype === "bool") return Array.from(values, (v) => v !== 0);
  if (!FLOATS.has(t.dtype)) return Array.from(values, Number);
  return Array.from(values as ArrayLike<number>, (v) => (Number.isFinite(v) ? v : String(v)));
}

/** Serialises the selected outputs (JSON values, or raw little-endian bytes with `binary_data_size`). */
export function encodeOutputs(
  selected: readonly { name: string; binary: boolean }[],
  outputs: Record<string, HostTensor>,
): EncodedOutputs {
  const parts: string[] = [];
  const chunks: Uint8Array[] = [];
  for (const { name, binary } of selected) {
    const t = outputs[name];
    if (!t) throw new CicadaError("E_OUTPUT_MISSING", `the model produced no output '${name}'`);
    const head = { name, datatype: DATATYPE_OF[t.dtype], shape: t.dims };
    if (binary) {
      const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      chunks.push(bytes);
      parts.push(JSON.stringify({ ...head, parameters: { binary_data_size: bytes.byteLength } }));
    } else {
      parts.push(JSON.stringify({ ...head, data: jsonValues(t) }));
    }
  }
  return { parts, chunks };
}

/**
 * The response body: `head` (model_name, parameters, …) with the encoded outputs; with binary outputs the
 * JSON is followed by their bytes and `headerLength` is its size (`Inference-Header-Content-Length`).
 */
export function inferResponseBody(
  head: Record<string, unknown>,
  encoded: EncodedOutputs,
): { body: Uint8Array; headerLength?: number } {
  const open = JSON.stringify(head).slice(0, -1);
  const json = `${open}${open.length > 1 ? "," : ""}"outputs":[${encoded.parts.join(",")}]}`;
  const jsonBytes = Buffer.from(json, "utf8");
  if (encoded.chunks.length === 0) return { body: jsonBytes };
  return { body: Buffer.concat([jsonBytes, ...encoded.chunks]), headerLength: jsonBytes.byteLength };
}

/**
 * A client's request body for `feeds` (benchmarks, tests, a gateway): JSON tensors, or with `binary` the
 * JSON header followed by the raw bytes (send `headerLength` as Inference-Header-Content-Length).
 */
export function inferRequestBody(
  feeds: Record<string, HostTensor>,
  options: { binary?: boolean; parameters?: Parameters; id?: string } = {},
): { body: Buffer; headerLength?: number } {
  const entries = Object.entries(feeds);
  const inputs = entries.map(([name, t]) => ({
    name,
    shape: t.dims,
    datatype: DATATYPE_OF[t.dtype],
    ...(options.binary ? { parameters: { binary_data_size: t.data.byteLength } } : { data: jsonValues(t) }),
  }));
  const head = Buffer.from(
    JSON.stringify({
      ...(options.id !== undefined ? { id: options.id } : {}),
      ...(options.parameters ? { parameters: options.parameters } : {}),
      inputs,
    }),
  );
  if (!options.binary) return { body: head };
  const data = entries.map(([, t]) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  return { body: Buffer.concat([head, ...data]), headerLength: head.byteLength };
}

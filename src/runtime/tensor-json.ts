// Tensors as JSON files: what `cicada run --inputs F.json` reads and `--outputs F.json` writes, one format
// both ways, so that outputs can be compared with a reference outside the process (or fed to a model):
//   { "<name>": { "dtype": "float32", "dims": [1, 3], "data": [0.5, "NaN", "-Infinity"] }, … }
// `data` is row-major, flat or nested to match `dims` exactly. Values are exact both ways:
// - floats are JSON numbers (a float32 printed as the shortest double that reads back as it), and the
//   non-finite values, which JSON numbers cannot carry, the strings "NaN", "Infinity" and "-Infinity". A
//   number that only parses as Infinity (1e400) or overflows the element type is refused, never rounded;
// - int64 and uint64 are written as decimal strings (every value exact, beyond 2^53 too); read as strings
//   or as numbers up to 2^53 (a larger JSON number has already lost its low digits, so it is refused);
// - float16 and bfloat16 as the numbers their bits hold (encoded back with ties to even); bool as true/false
//   (0 and 1 are read too).
// Every refusal is a CicadaError naming the file and the field (`x.data[3]`) with the expected and found.
import { CicadaError } from "../errors.js";
import { DTYPES, MANIFEST_LIMITS } from "../format/manifest.js";
import type { DTypeName } from "../format/onnx-types.js";
import { halfFloatDecoder, halfFloatEncoder } from "../util/half-float.js";
import { typedArrayFor, type HostTensor } from "./host-tensor.js";

/**
 * Most elements one input tensor may have (2^28: 1 GiB of float32), the bound a manifest's example shapes
 * have too: larger ones are refused before allocation.
 */
export const MAX_INPUT_ELEMENTS: number = MANIFEST_LIMITS.exampleElements;
/** Most dimensions a tensor may have (onnxruntime's own bound is lower in practice). */
export const MAX_RANK: number = MANIFEST_LIMITS.rank;

/** The strings that stand for non-finite floats in JSON (protobuf's JSON mapping). */
export const NON_FINITE: Record<string, number> = { NaN: NaN, Infinity: Infinity, "-Infinity": -Infinity };

/** The value range of each integer type held in a JS number (64-bit types are BigInt: BIG_RANGES). */
export const INT_RANGES: Partial<Record<DTypeName, [number, number]>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-(2 ** 31), 2 ** 31 - 1],
  uint32: [0, 2 ** 32 - 1],
};
const BIG_RANGES: Partial<Record<DTypeName, [bigint, bigint]>> = {
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
};

const fmtCount = (n: number) => n.toLocaleString("en-US");

/** Element count of `dims`, checked against {@link MAX_INPUT_ELEMENTS} before anything is allocated. */
export function checkedElementCount(dims: readonly number[], what: string): number {
  const count = dims.reduce((a, b) => a * b, 1);
  if (count > MAX_INPUT_ELEMENTS) {
    throw new CicadaError(
      "E_INPUT_LIMIT",
      `${what}: shape [${dims.join(",")}] has ${fmtCount(count)} elements, more than the limit of ${fmtCount(MAX_INPUT_ELEMENTS)}`,
    );
  }
  return count;
}

/** Whether the runtime can pass tensors of `dtype` to onnxruntime (string tensors cannot cross threads). */
export function isTransferableDType(dtype: string): boolean {
  return dtype !== "string" && (DTYPES as readonly string[]).includes(dtype);
}

/** Converts one JSON value to the element type, or throws naming `field`. */
function elementFrom(dtype: DTypeName, v: unknown, field: string): number | bigint {
  const refuse = (expected: string): never => {
    throw new CicadaError(
      "E_INPUT_DTYPE",
      `${field}: expected ${expected}, found ${typeof v === "string" ? JSON.stringify(v) : String(v)}`,
    );
  };
  if (dtype === "bool") {
    if (v === true || v === 1) return 1;
    if (v === false || v === 0) return 0;
    return refuse("true, false, 0 or 1 (bool)");
  }
  const float = dtype.startsWith("float") || dtype === "bfloat16";
  if (float) {
    const expected = `a finite number or "NaN", "Infinity", "-Infinity" (${dtype})`;
    let x: number;
    if (typeof v === "string") x = Object.hasOwn(NON_FINITE, v) ? NON_FINITE[v]! : refuse(expected);
    else if (typeof v !== "number") return refuse(expected);
    // JSON has no Infinity: a number that parsed as one (1e400) was out of range, not meant as infinity.
    else if (!Number.isFinite(v))
      return refuse(`${expected}; a number that overflows (e.g. 1e400) is not one`);
    else x = v;
    const encode = halfFloatEncoder(dtype);
    const stored = encode ? encode(x) : dtype === "float32" ? Math.fround(x) : x;
    const value = encode ? halfFloatDecoder(dtype)!(stored) : stored;
    if (Number.isFinite(x) && !Number.isFinite(value)) return refuse(`a number within the range of ${dtype}`);
    return stored;
  }
  const big = BIG_RANGES[dtype];
  if (big) {
    let n: bigint;
    if (typeof v === "string" && /^-?\d{1,20}$/.test(v)) n = BigInt(v);
    else if (typeof v === "number" && Number.isSafeInteger(v)) n = BigInt(v);
    else if (typeof v === "number" && Number.isInteger(v))
      return refuse(
        `an integer within ±2^53 as a JSON number, or a decimal string (${dtype}) for larger ones`,
      );
    else return refuse(`an integer (${dtype}), as a number or a decimal string`);
    return n >= big[0] && n <= big[1] ? n : refuse(`an integer from ${big[0]} to ${big[1]} (${dtype})`);
  }
  const range = INT_RANGES[dtype];
  if (!range) return refuse(`a supported element type, not ${dtype}`);
  if (typeof v !== "number" || !Number.isInteger(v) || v < range[0] || v > range[1])
    return refuse(`an integer from ${range[0]} to ${range[1]} (${dtype})`);
  return v;
}

/**
 * Walks `data` (flat, or nested exactly as `dims`) row-major, calling `put` for each leaf. Iterative: the
 * depth followed is bounded by the rank, whatever the nesting of the input.
 */
function walkData(
  data: unknown,
  dims: readonly number[],
  count: number,
  field: string,
  put: (i: number, v: unknown, field: string) => void,
): void {
  if (!Array.isArray(data))
    throw new CicadaError("E_INPUT_SHAPE", `${field}: expected an array, found ${typeof data}`);
  if (dims.length <= 1 || !data.some((v) => Array.isArray(v))) {
    if (data.length !== count)
      throw new CicadaError(
        "E_INPUT_SHAPE",
        `${field}: shape [${dims.join(",")}] needs ${fmtCount(count)} values, found ${fmtCount(data.length)}`,
      );
    data.forEach((v, i) => put(i, v, `${field}[${i}]`));
    return;
  }
  // Nested: every level k must be an array of dims[k] entries; leaves only at the last level.
  let n = 0;
  const stack: { arr: unknown[]; level: number; i: number; path: string }[] = [
    { arr: data, level: 0, i: 0, path: field },
  ];
  const top = stack[0]!;
  if (top.arr.length !== dims[0])
    throw new CicadaError(
      "E_INPUT_SHAPE",
      `${field}: nested data must follow the shape [${dims.join(",")}]: found ${top.arr.length} entries at the top level, expected ${dims[0]} (or a flat array of ${fmtCount(count)} values)`,
    );
  while (stack.length) {
    const frame = stack.at(-1)!;
    if (frame.i === frame.arr.length) {
      stack.pop();
      continue;
    }
    const v = frame.arr[frame.i];
    const path = `${frame.path}[${frame.i}]`;
    frame.i++;
    const last = frame.level === dims.length - 1;
    if (last) {
      if (Array.isArray(v))
        throw new CicadaError(
          "E_INPUT_SHAPE",
          `${path}: expected a value (shape [${dims.join(",")}]), found an array`,
        );
      put(n++, v, path);
    } else {
      const want = dims[frame.level + 1]!;
      if (!Array.isArray(v) || v.length !== want)
        throw new CicadaError(
          "E_INPUT_SHAPE",
          `${path}: nested data must follow the shape [${dims.join(",")}]: expected an array of ${want}, found ${Array.isArray(v) ? `an array of ${v.length}` : typeof v}`,
        );
      stack.push({ arr: v, level: frame.level + 1, i: 0, path });
    }
  }
}

/** Converts one JSON tensor; `field` names it in errors (`file: name`). */
function tensorFromJson(value: unknown, field: string): HostTensor {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new CicadaError("E_USAGE", `${field}: expected an object { dtype, dims, data }`);
  const { dtype, dims, data } = value as Record<string, unknown>;
  if (typeof dtype !== "string" || !(DTYPES as readonly string[]).includes(dtype))
    throw new CicadaError(
      "E_INPUT_DTYPE",
      `${field}.dtype: expected one of ${DTYPES.join(", ")}, found ${JSON.stringify(dtype)}`,
    );
  if (!isTransferableDType(dtype))
    throw new CicadaError(
      "E_INPUT_DTYPE",
      `${field}.dtype: ${dtype} tensors are not supported by the runtime`,
    );
  if (
    !Array.isArray(dims) ||
    dims.length > MAX_RANK ||
    !dims.every((d): d is number => typeof d === "number" && Number.isSafeInteger(d) && d >= 0)
  )
    throw new CicadaError(
      "E_INPUT_SHAPE",
      `${field}.dims: expected at most ${MAX_RANK} non-negative integers, found ${JSON.stringify(dims)?.slice(0, 200)}`,
    );
  const type = dtype as DTypeName;
  const count = checkedElementCount(dims, field);
  const out = new (typedArrayFor(type))(count);
  const big = out instanceof BigInt64Array || out instanceof BigUint64Array;
  walkData(data, dims, count, `${field}.data`, (i, v, path) => {
    const e = elementFrom(type, v, path);
    (out as unknown as (number | bigint)[])[i] = big ? e : Number(e);
  });
  return { dtype: type, dims: [...dims], data: out };
}

/** Converts JSON tensors (`{ name: { dtype, dims, data } }`) to host tensors; `source` names them in errors. */
export function tensorsFromJson(json: unknown, source: string): Record<string, HostTensor> {
  if (typeof json !== "object" || json === null || Array.isArray(json))
    throw new CicadaError(
      "E_USAGE",
      `${source}: expected an object of tensors { "<name>": { dtype, dims, data } }`,
    );
  const out: Record<string, HostTensor> = {};
  for (const [name, t] of Object.entries(json)) out[name] = tensorFromJson(t, `${source}: field '${name}'`);
  return out;
}

/** One element as a JSON token (see the file header). */
function token(dtype: DTypeName, v: number | bigint, decode?: (bits: number) => number): string {
  if (typeof v === "bigint") return `"${v}"`;
  if (dtype === "bool") return v ? "true" : "false";
  const x = decode ? decode(v) : v;
  if (Number.isNaN(x)) return '"NaN"';
  if (x === Infinity) return '"Infinity"';
  if (x === -Infinity) return '"-Infinity"';
  return Object.is(x, -0) ? "-0" : String(x);
}

/** Tensors as the JSON text {@link tensorsFromJson} reads back to the same bits (NaN payloads aside). */
export function tensorsToJson(tensors: Record<string, HostTensor>): string {
  const parts = Object.entries(tensors).map(([name, t]) => {
    const decode = halfFloatDecoder(t.dtype);
    const values: string[] = new Array<string>(t.data.length);
    for (let i = 0; i < t.data.length; i++) values[i] = token(t.dtype, t.data[i]!, decode);
    return `  ${JSON.stringify(name)}: {"dtype": ${JSON.stringify(t.dtype)}, "dims": ${JSON.stringify(t.dims)}, "data": [${values.join(", ")}]}`;
  });
  return `{\n${parts.join(",\n")}\n}\n`;
}

// Test helper for the trust suites: ONNX TensorProto files (the backend test data's input_N.pb and
// output_N.pb) decoded into HostTensors, and a NaN-aware comparison of outputs with a tolerance that suits
// the element type. src/format/onnx-io.ts exposes no TensorProto decoder, so this decodes with the
// project's protobufjs schema (ONNX_DESCRIPTOR), keeping 64-bit integers exact (strings, then BigInt).
import protobuf from "protobufjs";
import { readFileSync } from "node:fs";
import { ONNX_DESCRIPTOR } from "../../../src/format/onnx-schema.js";
import { DataType, dtypeName, type DTypeName } from "../../../src/format/onnx-types.js";
import { typedArrayFor, type HostTensor, type TensorData } from "../../../src/runtime/host-tensor.js";

const TensorType = protobuf.Root.fromJSON(ONNX_DESCRIPTOR).lookupType("onnx.TensorProto");

interface RawTensor {
  name?: string;
  dims?: string[];
  dataType?: number;
  rawData?: Uint8Array;
  floatData?: number[];
  doubleData?: number[];
  int32Data?: number[];
  int64Data?: string[];
  uint64Data?: string[];
  stringData?: Uint8Array[];
  dataLocation?: number;
}

/** A decoded TensorProto: a HostTensor, or the reason it cannot be one (strings, external data, ...). */
export type DecodedTensor =
  { ok: true; name: string; tensor: HostTensor } | { ok: false; name: string; reason: string };

/** Decodes one TensorProto's bytes. */
export function decodeTensor(bytes: Uint8Array): DecodedTensor {
  const t = TensorType.toObject(TensorType.decode(bytes), {
    longs: String,
    enums: Number,
    defaults: false,
  }) as RawTensor;
  const name = t.name ?? "";
  const dtype = dtypeName(t.dataType ?? 0);
  if (!dtype) return { ok: false, name, reason: `element type ${t.dataType} has no HostTensor` };
  if (dtype === "string") return { ok: false, name, reason: "string tensors are outside the HostTensor API" };
  if (t.dataLocation === 1) return { ok: false, name, reason: "external data in a test tensor" };
  const dims = (t.dims ?? []).map(Number);
  const n = dims.reduce((a, b) => a * b, 1);
  const Ctor = typedArrayFor(dtype);
  let data: TensorData;
  if (t.rawData && t.rawData.byteLength) {
    if (t.rawData.byteLength !== n * Ctor.BYTES_PER_ELEMENT)
      return { ok: false, name, reason: `raw_data has ${t.rawData.byteLength} bytes for ${n} elements` };
    // Copy into an aligned buffer of its own (protobufjs hands out views into the file's bytes).
    const copy = new Uint8Array(t.rawData.byteLength);
    copy.set(t.rawData);
    data = new (Ctor as unknown as new (b: ArrayBuffer) => TensorData)(copy.buffer);
  } else {
    data = new Ctor(n);
    const src = typedSource(t, dtype);
    for (let i = 0; i < n; i++) (data as unknown as (number | bigint)[])[i] = src(i);
  }
  return { ok: true, name, tensor: { dtype, dims, data } };
}

/** Element i of a tensor stored in the typed repeated fields, as the typed array wants it. */
function typedSource(t: RawTensor, dtype: DTypeName): (i: number) => number | bigint {
  switch (dtype) {
    case "float32":
      return (i) => t.floatData?.[i] ?? 0;
    case "float64":
      return (i) => t.doubleData?.[i] ?? 0;
    case "int64":
      return (i) => BigInt(t.int64Data?.[i] ?? 0);
    case "uint64":
      return (i) => BigInt(t.uint64Data?.[i] ?? 0);
    case "uint32":
      return (i) => Number(t.uint64Data?.[i] ?? 0);
    default:
      // int8/16/32, uint8/16, bool, float16 and bfloat16 (as bits) live in int32_data.
      return (i) => t.int32Data?.[i] ?? 0;
  }
}

/** Reads and decodes a .pb TensorProto file. */
export function readTensorFile(path: string): DecodedTensor {
  return decodeTensor(readFileSync(path));
}

/** float16 bits to a number. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/** bfloat16 bits to a number. */
export function bfloatToFloat(h: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setUint32(0, (h & 0xffff) << 16);
  return view.getFloat32(0);
}

/** Tolerances of a comparison: the onnx backend's defaults are rtol 1e-3, atol 1e-7. */
export interface Tolerance {
  rtol: number;
  atol: number;
}

export const BACKEND_TOLERANCE: Tolerance = { rtol: 1e-3, atol: 1e-7 };

const FLOATS = new Set<DTypeName>(["float32", "float64", "float16", "bfloat16"]);

function valueAt(t: HostTensor, i: number): number {
  const v = t.data[i]!;
  if (t.dtype === "float16") return halfToFloat(Number(v));
  if (t.dtype === "bfloat16") return bfloatToFloat(Number(v));
  return Number(v);
}

/**
 * Compares `actual` with `expected`: same element type and shape; floats within `tol` (numpy's allclose:
 * |a - e| <= atol + rtol·|e|), NaN where the expected value is NaN and only there, infinities exactly;
 * integers and bools exactly. Returns undefined when they agree, else what differs (first mismatch and counts).
 */
export function compareTensor(
  actual: HostTensor | undefined,
  expected: HostTensor,
  tol: Tolerance = BACKEND_TOLERANCE,
): string | undefined {
  if (!actual) return "missing";
  if (actual.dtype !== expected.dtype) return `element type ${actual.dtype}, expected ${expected.dtype}`;
  if (actual.dims.join(",") !== expected.dims.join(","))
    return `shape [${actual.dims.join(",")}], expected [${expected.dims.join(",")}]`;
  if (actual.data.length !== expected.data.length)
    return `${actual.data.length} values, expected ${expected.data.length}`;
  let mismatches = 0;
  let first = "";
  const float = FLOATS.has(expected.dtype);
  for (let i = 0; i < expected.data.length; i++) {
    let same: boolean;
    if (float) {
      const a = valueAt(actual, i);
      const e = valueAt(expected, i);
      same =
        (Number.isNaN(a) && Number.isNaN(e)) ||
        a === e ||
        (Number.isFinite(e) && Math.abs(a - e) <= tol.atol + tol.rtol * Math.abs(e));
      if (!same && !first) first = `[${i}] ${a} vs ${e}`;
    } else {
      same = actual.data[i] === expected.data[i];
      if (!same && !first) first = `[${i}] ${actual.data[i]} vs ${expected.data[i]}`;
    }
    if (!same) mismatches++;
  }
  return mismatches ? `${mismatches} of ${expected.data.length} values differ, first ${first}` : undefined;
}

/** Compares every expected output by name; undefined when all agree, else `name: what differs; ...`. */
export function compareOutputs(
  actual: Record<string, HostTensor>,
  expected: Record<string, HostTensor>,
  tol: Tolerance = BACKEND_TOLERANCE,
): string | undefined {
  const problems: string[] = [];
  for (const [name, e] of Object.entries(expected)) {
    const d = compareTensor(actual[name], e, tol);
    if (d) problems.push(`${name}: ${d}`);
  }
  return problems.length ? problems.join("; ") : undefined;
}

/** True if `dtype` is a float type (compared with a tolerance). */
export function isFloat(dtype: DTypeName): boolean {
  return FLOATS.has(dtype);
}

export { DataType };

/**
 * The fuzzer's bar: same element type and shape, NaN and infinities at the same places, and a cosine of at
 * least `min` over the finite rest (exact for integers). Undefined when they agree, else what differs.
 */
export function compareCosine(
  actual: HostTensor | undefined,
  expected: HostTensor,
  min = 0.99999,
): string | undefined {
  if (!actual) return "missing";
  if (actual.dtype !== expected.dtype) return `element type ${actual.dtype}, expected ${expected.dtype}`;
  if (actual.dims.join(",") !== expected.dims.join(","))
    return `shape [${actual.dims.join(",")}], expected [${expected.dims.join(",")}]`;
  if (!FLOATS.has(expected.dtype)) return compareTensor(actual, expected, { rtol: 0, atol: 0 });
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < expected.data.length; i++) {
    const a = valueAt(actual, i);
    const e = valueAt(expected, i);
    if (!Number.isFinite(a) || !Number.isFinite(e)) {
      if (!(Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e)))) return `[${i}] ${a} vs ${e}`;
      continue;
    }
    dot += a * e;
    na += a * a;
    nb += e * e;
  }
  const cosine = na === 0 && nb === 0 ? 1 : na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
  return cosine >= min ? undefined : `cosine ${cosine}`;
}

/** The largest finite absolute value of a tensor (0 for none). */
export function maxAbs(t: HostTensor): number {
  let m = 0;
  for (let i = 0; i < t.data.length; i++) {
    const v = Math.abs(valueAt(t, i));
    if (Number.isFinite(v) && v > m) m = v;
  }
  return m;
}

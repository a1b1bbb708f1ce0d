// The tensor type of our public API and of the messages between threads: a typed array with its
// element type and shape. It does not depend on onnxruntime, so tests and the HTTP layer can use it
// without loading the native addon.
import type { DTypeName } from "../format/onnx-types.js";

export type TensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** A tensor in host memory. */
export interface HostTensor {
  dtype: DTypeName;
  dims: number[];
  data: TensorData;
}

/** The typed-array constructor for an element type. */
export function typedArrayFor(dtype: DTypeName): { new (n: number): TensorData; BYTES_PER_ELEMENT: number } {
  switch (dtype) {
    case "float32":
      return Float32Array;
    case "float64":
      return Float64Array;
    case "int8":
      return Int8Array;
    case "uint8":
    case "bool":
      return Uint8Array;
    case "int16":
      return Int16Array;
    case "uint16":
    case "float16":
    case "bfloat16":
      return Uint16Array;
    case "int32":
      return Int32Array;
    case "uint32":
      return Uint32Array;
    case "int64":
      return BigInt64Array;
    case "uint64":
      return BigUint64Array;
    default:
      throw new Error(`element type ${dtype} has no typed array`);
  }
}

/** Values of a numeric tensor as doubles (for comparisons). */
export function toFloat64(t: HostTensor): Float64Array {
  const out = new Float64Array(t.data.length);
  for (let i = 0; i < t.data.length; i++) out[i] = Number(t.data[i]);
  return out;
}

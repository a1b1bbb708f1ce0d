// Half-precision floats (float16, bfloat16) travel as their 16-bit patterns in a Uint16Array (JavaScript
// has no such element type in Node 20). Comparisons and JSON need their values: decoding and encoding here,
// encoding with round-to-nearest-even as onnxruntime and PyTorch do.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The value of a float16 bit pattern. */
export function float16ToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** The nearest float16 bit pattern of `value` (ties to even; overflow to Infinity; NaN to a quiet NaN). */
export function numberToFloat16(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const a = Math.abs(value);
  if (a === Infinity) return sign | 0x7c00;
  if (a < 2 ** -25) return sign; // rounds to zero (2^-25 is the tie between 0 and the smallest subnormal)
  if (a < 2 ** -14) {
    // Subnormal: units of 2^-24, ties to even.
    return sign | roundHalfEven(a * 2 ** 24);
  }
  let exponent = Math.floor(Math.log2(a));
  if (2 ** exponent > a) exponent--; // log2 rounding near powers of two
  if (2 ** (exponent + 1) <= a) exponent++;
  let mantissa = roundHalfEven((a / 2 ** exponent - 1) * 1024);
  if (mantissa === 1024) {
    mantissa = 0;
    exponent++;
  }
  if (exponent > 15) return sign | 0x7c00;
  return sign | ((exponent + 15) << 10) | mantissa;
}

function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const rest = x - floor;
  if (rest > 0.5) return floor + 1;
  if (rest < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** The value of a bfloat16 bit pattern (the upper half of a float32). */
export function bfloat16ToNumber(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0]!;
}

/** The nearest bfloat16 bit pattern of `value` (through float32, ties to even; NaN to a quiet NaN). */
export function numberToBfloat16(value: number): number {
  if (Number.isNaN(value)) return 0x7fc0;
  f32[0] = value;
  const bits = u32[0]!;
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

/** The decoder of a half-float element type, or undefined for any other type. */
export function halfFloatDecoder(dtype: string): ((bits: number) => number) | undefined {
  if (dtype === "float16") return float16ToNumber;
  if (dtype === "bfloat16") return bfloat16ToNumber;
  return undefined;
}

/** The encoder of a half-float element type, or undefined for any other type. */
export function halfFloatEncoder(dtype: string): ((value: number) => number) | undefined {
  if (dtype === "float16") return numberToFloat16;
  if (dtype === "bfloat16") return numberToBfloat16;
  return undefined;
}

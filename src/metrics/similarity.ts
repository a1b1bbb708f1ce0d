// How close two outputs are: the paper's correctness metric (cosine similarity) and the largest absolute
// difference, accumulated in double precision so that the metric itself adds no error. Non-finite values
// are compared by position: a NaN where the reference has a NaN (or an Infinity of the same sign where it
// has one) is the same answer, and the metrics are computed over the finite rest; a non-finite value in
// one tensor and not the other is a mismatch, counted, and makes the cosine NaN so that every threshold
// (`cosine >= t`) fails, also for callers that look at the cosine only.
import { CicadaError } from "../errors.js";
import type { DTypeName } from "../format/onnx-types.js";
import { halfFloatDecoder } from "../util/half-float.js";
import type { HostTensor } from "../runtime/host-tensor.js";

/** Anything indexable holding numbers or bigints (typed arrays). */
export type NumericArray = ArrayLike<number | bigint>;

/** The comparison of two equally long arrays. */
export interface Similarity {
  /**
   * Cosine similarity over the positions finite in both; NaN when non-finite positions mismatch (so that
   * it fails every threshold). Two all-zero (or empty) finite rests are identical: 1.
   */
  cosine: number;
  /** Largest absolute difference over the positions finite in both; Infinity when non-finite positions mismatch. */
  maxAbsDiff: number;
  /** Positions where one value is non-finite and the other is not the same non-finite value. */
  nonFiniteMismatches: number;
  /** Positions holding the same non-finite value in both (NaN and NaN, +Infinity and +Infinity, …). */
  nonFiniteMatches: number;
  /** Cosine and max abs difference over the positions finite in both, whatever the mismatches. */
  finite: { cosine: number; maxAbsDiff: number };
}

/** Whether a non-finite `a` and `b` are the same answer: both NaN, or the same infinity. */
function sameNonFinite(a: number, b: number): boolean {
  return Number.isNaN(a) ? Number.isNaN(b) : a === b;
}

/** Compares `actual` with `expected` position by position (see the file header for non-finite values). */
export function similarity(actual: NumericArray, expected: NumericArray): Similarity {
  if (actual.length !== expected.length) {
    throw new Error(`cannot compare arrays of ${actual.length} and ${expected.length} elements`);
  }
  let dot = 0;
  let na = 0;
  let nb = 0;
  let maxAbsDiff = 0;
  let mismatches = 0;
  let matches = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = Number(actual[i]);
    const b = Number(expected[i]);
    if (!Number.isFinite(a) || !Number.isFinite(b)) {
      if (sameNonFinite(a, b)) matches++;
      else mismatches++;
      continue;
    }
    dot += a * b;
    na += a * a;
    nb += b * b;
    const d = Math.abs(a - b);
    if (d > maxAbsDiff) maxAbsDiff = d;
  }
  let cosine: number;
  if (na === 0 && nb === 0) cosine = 1;
  else if (na === 0 || nb === 0) cosine = 0;
  else if (!Number.isFinite(na) || !Number.isFinite(nb) || !Number.isFinite(dot)) {
    // Finite values whose squares overflow a double: compare the arrays scaled down instead.
    return scaled(actual, expected);
  } else cosine = dot / (Math.sqrt(na) * Math.sqrt(nb));
  const finite = { cosine, maxAbsDiff };
  return {
    cosine: mismatches ? NaN : cosine,
    maxAbsDiff: mismatches ? Infinity : maxAbsDiff,
    nonFiniteMismatches: mismatches,
    nonFiniteMatches: matches,
    finite,
  };
}

/** {@link similarity} of arrays whose finite values are too large to square: both scaled by their largest. */
function scaled(actual: NumericArray, expected: NumericArray): Similarity {
  let largest = 0;
  for (const arr of [actual, expected])
    for (let i = 0; i < arr.length; i++) {
      const v = Math.abs(Number(arr[i]));
      if (Number.isFinite(v) && v > largest) largest = v;
    }
  const scale = (arr: NumericArray) =>
    Float64Array.from({ length: arr.length }, (_, i) => Number(arr[i]) / largest);
  const s = similarity(scale(actual), scale(expected));
  const maxAbsDiff = (d: number) => (Number.isFinite(d) ? d * largest : d);
  return {
    ...s,
    maxAbsDiff: maxAbsDiff(s.maxAbsDiff),
    finite: { ...s.finite, maxAbsDiff: s.finite.maxAbsDiff * largest },
  };
}

/** Whether `s` passes a check at `threshold`: no non-finite mismatch and the cosine at least the threshold. */
export function agrees(s: Similarity, threshold: number): boolean {
  return s.nonFiniteMismatches === 0 && s.cosine >= threshold;
}

/** The values of a tensor as numbers: half floats (stored as their bits) decoded, others as stored. */
export function comparableValues(t: { dtype: DTypeName; data: HostTensor["data"] }): NumericArray {
  const decode = halfFloatDecoder(t.dtype);
  if (!decode) return t.data;
  return Float32Array.from(t.data as Uint16Array, decode);
}

/**
 * Compares two tensors: element types and shapes must agree (else E_RUNTIME naming `what`), then their
 * values as {@link similarity} does (half floats decoded first).
 */
export function compareTensors(actual: HostTensor, expected: HostTensor, what: string): Similarity {
  if (actual.dtype !== expected.dtype || actual.dims.join(",") !== expected.dims.join(",")) {
    throw new CicadaError(
      "E_RUNTIME",
      `${what}: ${actual.dtype} [${actual.dims.join(",")}] cannot be compared with the reference's ${expected.dtype} [${expected.dims.join(",")}]`,
    );
  }
  return similarity(comparableValues(actual), comparableValues(expected));
}

/** A one-line account of a comparison, for messages: cosine, max abs difference and non-finite positions. */
export function describeSimilarity(s: Similarity): string {
  const base = `cosine ${s.finite.cosine.toFixed(7)}, max abs diff ${s.finite.maxAbsDiff.toExponential(2)}`;
  const same = s.nonFiniteMatches ? `, ${s.nonFiniteMatches} non-finite in both at the same positions` : "";
  const diff = s.nonFiniteMismatches
    ? `, ${s.nonFiniteMismatches} non-finite position${s.nonFiniteMismatches === 1 ? " differs" : "s differ"} (NaN or Infinity in one, not the other)`
    : "";
  return `${base}${same}${diff}`;
}

// How close two outputs are: the paper's correctness metric (cosine similarity) and the largest absolute
// difference, accumulated in double precision so that the metric itself adds no error.

/** Anything indexable holding numbers or bigints (typed arrays). */
export type NumericArray = ArrayLike<number | bigint>;

/** Cosine similarity and max abs difference of two equally long arrays. */
export interface Similarity {
  cosine: number;
  maxAbsDiff: number;
}

/**
 * Compares `actual` with `expected`. Two all-zero arrays are identical (cosine 1); a NaN anywhere makes
 * the cosine NaN, which fails every threshold.
 */
export function similarity(actual: NumericArray, expected: NumericArray): Similarity {
  if (actual.length !== expected.length) {
    throw new Error(`cannot compare arrays of ${actual.length} and ${expected.length} elements`);
  }
  let dot = 0;
  let na = 0;
  let nb = 0;
  let maxAbsDiff = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = Number(actual[i]);
    const b = Number(expected[i]);
    dot += a * b;
    na += a * a;
    nb += b * b;
    const d = Math.abs(a - b);
    if (d > maxAbsDiff || Number.isNaN(d)) maxAbsDiff = d;
  }
  let cosine: number;
  if (na === 0 && nb === 0) cosine = 1;
  else if (na === 0 || nb === 0) cosine = 0;
  else cosine = dot / (Math.sqrt(na) * Math.sqrt(nb));
  return { cosine, maxAbsDiff };
}

// Summary statistics of repeated measurements. The machine is noisy, so the benchmark reports the median
// and the spread between the 10th and 90th percentiles rather than means, which one slow outlier moves.

/**
 * The q-quantile (0 <= q <= 1) of `values` by linear interpolation between closest ranks (the default of
 * R and NumPy), so that p10/p90 of a few repeats stay between observed values. NaN for no values.
 */
export function quantile(values: readonly number[], q: number): number {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile must be within [0, 1], found ${q}`);
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** The median of `values` (NaN for none). */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** Median and spread of one measurement over repeats. */
export interface Summary {
  median: number;
  p10: number;
  p90: number;
  min: number;
  max: number;
  n: number;
}

/** Summarises `values`; every field is NaN (n = 0) when there are none. */
export function summarize(values: readonly number[]): Summary {
  return {
    median: median(values),
    p10: quantile(values, 0.1),
    p90: quantile(values, 0.9),
    min: values.length ? Math.min(...values) : NaN,
    max: values.length ? Math.max(...values) : NaN,
    n: values.length,
  };
}

/**
 * The order of `items` for round `round`: rotated by one per round, so that over `items.length` rounds
 * every item runs in every position once (a strategy never always follows the same neighbour).
 */
export function rotation<T>(items: readonly T[], round: number): T[] {
  if (items.length === 0) return [];
  const k = ((round % items.length) + items.length) % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

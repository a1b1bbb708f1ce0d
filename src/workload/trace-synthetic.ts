// The built-in workload: a seeded generator of the shape of the paper's Azure-derived trace — one hour,
// 2,426 invocations, per-minute bursts — for when no trace file is supplied. Per hour:
// - functions have Zipf-skewed popularity (weight 1/k^1.1 for the k-th function);
// - 12 of the 60 minutes are bursts: most of a burst's invocations arrive within 2–6 s, 70 % of them of
//   one function (drawn by popularity), the rest by popularity;
// - of the other 48 minutes, 40 % are empty and the rest carry a light background, uniform in the minute;
// - the hour's total is exactly `perHour` (2,426): minutes get counts proportional to their drawn weights,
//   rounded by largest remainder.
// Every draw comes from a stream keyed by the seed and the hour, so a given seed always gives the same trace
// and cutting it (--minutes) keeps the first minutes unchanged.
import { CicadaError } from "../errors.js";
import { SeededRandom } from "../util/seeded-random.js";
import { MINUTE_MS, normalizeTrace, type Invocation, type InvocationTrace } from "./trace-invocations.js";

/** Options of {@link syntheticTrace}. */
export interface SyntheticOptions {
  seed?: number;
  /** Length in minutes (default 60; more than an hour repeats the shape with fresh draws per hour). */
  minutes?: number;
  /** Invocations per full hour (default 2,426, the paper's). */
  perHour?: number;
  /** Distinct functions (default 8). */
  functions?: number;
}

/** The paper's workload: invocations in its one-hour trace. */
export const PAPER_INVOCATIONS_PER_HOUR = 2426;
const BURST_MINUTES = 12;
const EMPTY_SHARE = 0.4;
const BURST_DOMINANT_SHARE = 0.7;
const BURST_SPREAD_SHARE = 0.1;
const ZIPF_EXPONENT = 1.1;

/** Picks an index with probability proportional to `weights` (cumulative, ascending). */
function pick(cumulative: readonly number[], u: number): number {
  const target = u * cumulative[cumulative.length - 1]!;
  let lo = 0;
  let hi = cumulative.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cumulative[mid]! > target) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Integer counts summing to `total`, proportional to `weights` (largest remainder). */
export function apportion(weights: readonly number[], total: number): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  if (!(sum > 0)) return weights.map(() => 0);
  const exact = weights.map((w) => (w / sum) * total);
  const counts = exact.map(Math.floor);
  let left = total - counts.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => ({ i, r: e - Math.floor(e) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (const { i } of order) {
    if (left-- <= 0) break;
    counts[i]!++;
  }
  return counts;
}

/** One hour of the workload, minutes offset by `hour`. */
function hourOf(seed: number, hour: number, perHour: number, funcs: string[]): Invocation[] {
  const rng = new SeededRandom(seed, `synthetic-hour-${hour}`);
  const cumulative: number[] = [];
  funcs.forEach((_, k) => cumulative.push((cumulative[k - 1] ?? 0) + 1 / (k + 1) ** ZIPF_EXPONENT));
  // Burst minutes: a partial Fisher–Yates shuffle of the hour's minutes.
  const minutes = Array.from({ length: 60 }, (_, i) => i);
  for (let i = 0; i < BURST_MINUTES; i++) {
    const j = i + Math.floor(rng.next() * (60 - i));
    [minutes[i], minutes[j]] = [minutes[j]!, minutes[i]!];
  }
  const burst = new Set(minutes.slice(0, BURST_MINUTES));
  const weights = Array.from({ length: 60 }, (_, m) => {
    const u = rng.next();
    if (burst.has(m)) return 4 + 12 * u * u;
    return rng.next() < EMPTY_SHARE ? 0 : 0.1 + 0.9 * u;
  });
  const counts = apportion(weights, perHour);
  const out: Invocation[] = [];
  const base = hour * 60 * MINUTE_MS;
  counts.forEach((count, m) => {
    const start = base + m * MINUTE_MS;
    if (!burst.has(m)) {
      for (let k = 0; k < count; k++)
        out.push({ t: start + rng.next() * MINUTE_MS, func: funcs[pick(cumulative, rng.next())]! });
      return;
    }
    const dominant = funcs[pick(cumulative, rng.next())]!;
    const lengthMs = 2000 + rng.next() * 4000;
    const offset = rng.next() * (MINUTE_MS - lengthMs);
    for (let k = 0; k < count; k++) {
      const spread = rng.next() < BURST_SPREAD_SHARE;
      const t = spread ? rng.next() * MINUTE_MS : offset + rng.next() * lengthMs;
      const func = rng.next() < BURST_DOMINANT_SHARE ? dominant : funcs[pick(cumulative, rng.next())]!;
      out.push({ t: start + t, func });
    }
  });
  return out;
}

/** The synthetic trace (see the header of this file for its shape). */
export function syntheticTrace(options: SyntheticOptions = {}): InvocationTrace {
  const seed = options.seed ?? 0;
  const minutes = options.minutes ?? 60;
  const perHour = options.perHour ?? PAPER_INVOCATIONS_PER_HOUR;
  const functions = options.functions ?? 8;
  if (!(minutes > 0)) throw new CicadaError("E_USAGE", `--minutes must be positive, found ${minutes}`);
  if (!Number.isInteger(functions) || functions < 1)
    throw new CicadaError("E_USAGE", `the synthetic trace needs at least one function, found ${functions}`);
  const funcs = Array.from({ length: functions }, (_, k) => `fn-${k + 1}`);
  const invocations: Invocation[] = [];
  for (let h = 0; h * 60 < minutes; h++) invocations.push(...hourOf(seed, h, perHour, funcs));
  const end = minutes * MINUTE_MS;
  return normalizeTrace(
    `synthetic:seed=${seed}`,
    invocations.filter((i) => i.t < end),
    end,
  );
}

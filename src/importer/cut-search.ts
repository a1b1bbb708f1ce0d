// Where to cut a topologically ordered graph into stages. Two goals, in this order:
//  1. few tensors cross each cut (ideally one activation: then a stage hands exactly one tensor on, and
//     nothing computed early has to be carried through later stages);
//  2. stages balanced by weight bytes (the pipeline's retrieval and application units work per stage, and
//     the largest stage bounds the peak memory of streaming execution).
// The rule: let t run upward through the distinct crossing counts, starting at the smallest. For each t
// the candidate cuts are the positions crossed by at most t tensors; among them, choose the N-1 cuts that
// minimise the largest stage's weight bytes (exact, by dynamic programming). Accept the first t whose best
// plan's largest stage is within BALANCE_TOLERANCE of the ideal (total / N, or the largest single node
// when that is more); if none is, take the best plan found (lowest t among equals). Then, keeping that t
// and that largest stage, a second pass evens out the other stages (least sum of squares).
// A stage's cost counts every weight its nodes read, so a weight shared by two stages is paid by both (it
// is duplicated), plus one byte per node so that stages without weights still balance by node count.
import { CicadaError } from "../errors.js";

/** A plan within this factor of the ideal (total bytes / stage count) is balanced enough. */
export const BALANCE_TOLERANCE = 1.5;

/** Candidate cuts beyond this many are thinned for the quadratic balancing pass. */
const MAX_BALANCE_CANDIDATES = 2000;

/** The default stage size target: one stage per this many weight bytes... */
export const DEFAULT_STAGE_BYTES = 32 * 1024 * 1024;
/** ...but at least this many stages... */
export const DEFAULT_MIN_STAGES = 4;
/** ...and at most this many. */
export const DEFAULT_MAX_STAGES = 32;

/**
 * The stage count used when none is asked for: clamp(ceil(total / 32 MiB), 4, 32), capped by how many
 * stages the model can be cut into.
 */
export function defaultStageCount(totalWeightBytes: number, possibleStages: number): number {
  const wanted = Math.ceil(totalWeightBytes / DEFAULT_STAGE_BYTES);
  return Math.min(possibleStages, Math.max(DEFAULT_MIN_STAGES, Math.min(DEFAULT_MAX_STAGES, wanted)));
}

/** What the search needs to know about the ordered nodes. */
export interface CutProblem {
  /** Number of positions (nodes in topological order). */
  positions: number;
  /** crossings[k]: tensors crossing the cut before position k (1 <= k < positions). */
  crossings: Int32Array;
  /** For each position, the ids of the weights its node reads. */
  uses: number[][];
  /** Bytes of each weight id. */
  weightBytes: number[];
  /** Per-node cost added to a stage's weight bytes (balances weight-free regions); default 1. */
  nodeCost?: number;
}

/** A chosen plan. */
export interface CutPlan {
  /** Cut positions, ascending: stage i is [cuts[i-1] ?? 0, cuts[i] ?? positions). */
  cuts: number[];
  /** The crossing threshold t the cuts were taken under. */
  threshold: number;
  /** Weight bytes of each stage (shared weights counted in every stage that reads them). */
  stageBytes: number[];
}

/** Prefix sums with point updates (a Fenwick tree), for interval weight costs. */
class Fenwick {
  private readonly tree: Float64Array;
  constructor(size: number) {
    this.tree = new Float64Array(size + 1);
  }
  add(i: number, v: number): void {
    for (i++; i < this.tree.length; i += i & -i) this.tree[i]! += v;
  }
  /** Sum of entries [0, end). */
  prefix(end: number): number {
    let s = 0;
    for (let i = end; i > 0; i -= i & -i) s += this.tree[i]!;
    return s;
  }
}

/** Weight bytes of every stage of a cut list (exact: a weight counts once per stage that reads it). */
export function stageWeightBytes(p: CutProblem, cuts: readonly number[]): number[] {
  const bounds = [0, ...cuts, p.positions];
  const out: number[] = [];
  const stamp = new Int32Array(p.weightBytes.length).fill(-1);
  for (let s = 0; s + 1 < bounds.length; s++) {
    let bytes = 0;
    for (let q = bounds[s]!; q < bounds[s + 1]!; q++) {
      for (const w of p.uses[q]!) {
        if (stamp[w] !== s) {
          stamp[w] = s;
          bytes += p.weightBytes[w]!;
        }
      }
    }
    out.push(bytes);
  }
  return out;
}

/**
 * The N-1 cuts among `candidates` (ascending positions in 1..positions-1) minimising the largest stage
 * cost, or undefined if there are too few candidates. f[k][i] is the best largest cost of splitting
 * [bound_i, end) into k stages; it is computed for i from the right, with a Fenwick tree holding each
 * weight's contribution at its next use, so cost(bound_i, bound_j) is one prefix sum. Because the cost of
 * the first stage grows with j and f[k-1][j] shrinks with it, the best j is found by binary search.
 */
export function bestCuts(p: CutProblem, candidates: readonly number[], stages: number): number[] | undefined {
  if (stages < 1 || candidates.length < stages - 1) return undefined;
  const bounds = [0, ...candidates, p.positions];
  const B = bounds.length; // boundary indices 0..B-1; B-1 is the end
  const t = suffixDp(p, bounds, stages, (i, cost, { f, choice }) => {
    for (let k = 1; k <= stages; k++) {
      // The first stage ends at boundary j in (i, B-k]: the k-1 later stages need k-1 boundaries after j.
      let lo = i + 1;
      let hi = B - k;
      if (lo > hi) break;
      const prev = f[k - 1]!;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cost(mid) >= prev[mid]!) hi = mid;
        else lo = mid + 1;
      }
      let best = lo;
      let bestValue = Math.max(cost(lo), prev[lo]!);
      if (lo - 1 > i) {
        const v = Math.max(cost(lo - 1), prev[lo - 1]!);
        if (v < bestValue) [best, bestValue] = [lo - 1, v];
      }
      f[k]![i] = bestValue;
      choice[k]![i] = best;
    }
  });
  return cutsOf(t, bounds, stages);
}

/** The DP tables over boundary indices: f[k][i] for [bound_i, end) in k stages, and the first stage's end. */
interface SuffixTables {
  f: Float64Array[];
  choice: Int32Array[];
}

/**
 * The scaffold both stage-splitting programmes share: boundary indices are visited from the right while a
 * Fenwick tree holds each weight's bytes at its next use, so that the cost of a stage [bound_i, bound_j)
 * (its distinct weights plus the per-node cost) is one prefix sum. `visit(i, cost, tables)` fills f[·][i].
 */
function suffixDp(
  p: CutProblem,
  bounds: readonly number[],
  stages: number,
  visit: (i: number, cost: (j: number) => number, tables: SuffixTables) => void,
): SuffixTables {
  const B = bounds.length;
  const nodeCost = p.nodeCost ?? 1;
  const fenwick = new Fenwick(p.positions);
  const nextUse = new Int32Array(p.weightBytes.length).fill(-1);
  const tables: SuffixTables = {
    f: Array.from({ length: stages + 1 }, () => new Float64Array(B).fill(Infinity)),
    choice: Array.from({ length: stages + 1 }, () => new Int32Array(B).fill(-1)),
  };
  tables.f[0]![B - 1] = 0;
  let position = p.positions;
  for (let i = B - 2; i >= 0; i--) {
    for (; position > bounds[i]!;) {
      position--;
      for (const w of p.uses[position]!) {
        if (nextUse[w]! >= 0) fenwick.add(nextUse[w]!, -p.weightBytes[w]!);
        fenwick.add(position, p.weightBytes[w]!);
        nextUse[w] = position;
      }
    }
    const start = bounds[i]!;
    visit(i, (j) => fenwick.prefix(bounds[j]!) + nodeCost * (bounds[j]! - start), tables);
  }
  return tables;
}

/** The cut positions of the best plan in `tables`, or undefined if no plan of `stages` stages exists. */
function cutsOf(
  { f, choice }: SuffixTables,
  bounds: readonly number[],
  stages: number,
): number[] | undefined {
  if (!Number.isFinite(f[stages]![0]!)) return undefined;
  const cuts: number[] = [];
  for (let k = stages, i = 0; k > 1; k--) {
    i = choice[k]![i]!;
    cuts.push(bounds[i]!);
  }
  return cuts;
}

/**
 * Fewest stages with every stage's weight bytes <= `limit`, cutting only at `candidates` (greedy: each
 * stage extends to the last candidate that still fits, which is optimal for interval costs that grow with
 * the interval). Returns the cuts, or the first range between candidates that alone exceeds the limit.
 */
export function greedyCuts(
  p: CutProblem,
  candidates: readonly number[],
  limit: number,
): { cuts: number[] } | { tooLarge: { start: number; end: number; bytes: number } } {
  const n = p.positions;
  const bounds = [0, ...candidates, n];
  const stamp = new Int32Array(p.weightBytes.length).fill(-1);
  const cuts: number[] = [];
  let stage = 0;
  let start = 0; // boundary index of the current stage's start
  while (bounds[start]! < n) {
    let bytes = 0;
    let fits = start; // last boundary index the stage can end at
    let q = bounds[start]!;
    for (let j = start + 1; j < bounds.length; j++) {
      for (; q < bounds[j]!; q++) {
        for (const w of p.uses[q]!) {
          if (stamp[w] !== stage) {
            stamp[w] = stage;
            bytes += p.weightBytes[w]!;
          }
        }
      }
      if (bytes > limit) break;
      fits = j;
    }
    if (fits === start) {
      return { tooLarge: { start: bounds[start]!, end: bounds[start + 1]!, bytes } };
    }
    if (bounds[fits]! < n) cuts.push(bounds[fits]!);
    start = fits;
    stage++;
  }
  return { cuts };
}

/**
 * Second pass: among the plans of exactly `stages` stages cutting at `candidates` whose every stage costs
 * at most `limit` (the optimal largest stage from bestCuts), the one with the least sum of squared stage
 * costs. The largest stage alone does not say how the others are cut (with a 1 GB embedding in one
 * stage, any split of the rest into stages under 1 GB is "optimal"); squares spread them evenly.
 * O(candidates^2 * stages) at worst, so very long candidate lists are thinned (keeping `keep`, a
 * feasible plan, so the result is never worse than it).
 */
export function balancedCuts(
  p: CutProblem,
  candidates: readonly number[],
  stages: number,
  limit: number,
  keep: readonly number[],
): number[] {
  let pool = candidates;
  if (pool.length > MAX_BALANCE_CANDIDATES) {
    const step = pool.length / MAX_BALANCE_CANDIDATES;
    const thinned = new Set(keep);
    for (let x = 0; x < pool.length; x += step) thinned.add(pool[Math.floor(x)]!);
    pool = [...thinned].sort((a, b) => a - b);
  }
  const bounds = [0, ...pool, p.positions];
  const t = suffixDp(p, bounds, stages, (i, cost, { f, choice }) => {
    for (let j = i + 1; j < bounds.length; j++) {
      const c = cost(j);
      if (c > limit) break;
      const square = c * c;
      for (let k = 1; k <= stages; k++) {
        const v = square + f[k - 1]![j]!;
        if (v < f[k]![i]!) {
          f[k]![i] = v;
          choice[k]![i] = j;
        }
      }
    }
  });
  return cutsOf(t, bounds, stages) ?? [...keep];
}

/** Bytes in MiB with three significant digits (0.00391, 4.00, 1002). */
function mib(bytes: number): string {
  const v = bytes / 2 ** 20;
  return v >= 100 ? v.toFixed(0) : v.toPrecision(3);
}

function candidatesUnder(p: CutProblem, t: number): number[] {
  const out: number[] = [];
  for (let k = 1; k < p.positions; k++) if (p.crossings[k]! <= t) out.push(k);
  return out;
}

function thresholds(p: CutProblem): number[] {
  const set = new Set<number>();
  for (let k = 1; k < p.positions; k++) set.add(p.crossings[k]!);
  return [...set].sort((a, b) => a - b);
}

function planOf(p: CutProblem, cuts: number[], threshold: number): CutPlan {
  return { cuts, threshold, stageBytes: stageWeightBytes(p, cuts) };
}

/** The largest stage cost of a plan (weight bytes plus the per-node cost). */
function maxStageCost(p: CutProblem, cuts: readonly number[]): number {
  const bounds = [0, ...cuts, p.positions];
  const nodeCost = p.nodeCost ?? 1;
  return Math.max(...stageWeightBytes(p, cuts).map((b, s) => b + nodeCost * (bounds[s + 1]! - bounds[s]!)));
}

/** Total bytes of the distinct weights read anywhere (each counted once). */
export function totalWeightBytes(p: CutProblem): number {
  return stageWeightBytes(p, [])[0] ?? 0;
}

/**
 * The plan for exactly `stages` stages (1 <= stages <= positions), by the rule in the header comment. The
 * ideal a plan is measured against is total / N, or the largest single node's cost when that is more
 * (no plan can split a node: a 1 GB embedding is a 1 GB stage whatever the threshold).
 */
export function planStageCount(p: CutProblem, stages: number): CutPlan {
  if (stages === 1 || p.positions <= 1) return planOf(p, [], 0);
  const nodeCost = p.nodeCost ?? 1;
  const single = stageWeightBytes(
    p,
    Array.from({ length: p.positions - 1 }, (_, i) => i + 1),
  );
  const ideal = Math.max(
    (totalWeightBytes(p) + nodeCost * p.positions) / stages,
    Math.max(...single) + nodeCost,
  );
  let best: { cuts: number[]; threshold: number; max: number } | undefined;
  for (const t of thresholds(p)) {
    const cuts = bestCuts(p, candidatesUnder(p, t), stages);
    if (!cuts) continue;
    const max = maxStageCost(p, cuts);
    if (!best || max < best.max) best = { cuts, threshold: t, max };
    if (max <= BALANCE_TOLERANCE * ideal) break;
  }
  // Every position is a candidate at the largest threshold, so a plan exists whenever stages <= positions.
  const { cuts, threshold, max } = best!;
  return planOf(p, balancedCuts(p, candidatesUnder(p, threshold), stages, max, cuts), threshold);
}

/**
 * The plan with the fewest stages whose weight bytes are all <= `limit`, preferring the lowest crossing
 * threshold that achieves that count, then balanced. Throws E_USAGE naming the position range (through
 * `describe`) that alone exceeds the limit.
 */
export function planMaxStageBytes(
  p: CutProblem,
  limit: number,
  describe: (start: number, end: number) => string,
): CutPlan {
  const all = candidatesUnder(p, Infinity);
  const fewest = greedyCuts(p, all, limit);
  if ("tooLarge" in fewest) {
    const { start, end, bytes } = fewest.tooLarge;
    throw new CicadaError(
      "E_USAGE",
      `--max-stage-mb ${mib(limit)} is too small: ${describe(start, end)} cannot be split and needs ${bytes} bytes (${mib(bytes)} MiB) of weights`,
    );
  }
  const stages = fewest.cuts.length + 1;
  const fits = (cuts: number[]) => Math.max(...stageWeightBytes(p, cuts)) <= limit;
  for (const t of thresholds(p)) {
    const candidates = candidatesUnder(p, t);
    const greedy = greedyCuts(p, candidates, limit);
    if ("tooLarge" in greedy || greedy.cuts.length + 1 > stages) continue;
    // Balance within the limit: with the per-node tie-breaker if that fits, else on weight bytes alone.
    for (const nodeCost of [p.nodeCost ?? 1, 0]) {
      const q = { ...p, nodeCost };
      const cuts = bestCuts(q, candidates, stages);
      if (!cuts || !fits(cuts)) continue;
      const balanced = balancedCuts(q, candidates, stages, maxStageCost(q, cuts), cuts);
      return planOf(p, fits(balanced) ? balanced : cuts, t);
    }
    return planOf(p, greedy.cuts, t);
  }
  return planOf(p, fewest.cuts, thresholds(p).at(-1) ?? 0);
}

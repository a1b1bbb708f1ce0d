import { test } from "node:test";
import assert from "node:assert/strict";
import {
  balancedCuts,
  bestCuts,
  defaultStageCount,
  greedyCuts,
  planMaxStageBytes,
  planStageCount,
  stageWeightBytes,
  type CutProblem,
} from "../../src/importer/cut-search.js";
import { isCicadaError } from "../../src/errors.js";

const MiB = 1024 * 1024;

/** A chain of `bytes.length` nodes, node i reading weight i (0 bytes: none), with the given crossings. */
function chain(bytes: number[], crossings?: number[]): CutProblem {
  const weightBytes: number[] = [];
  const uses = bytes.map((b) => (b > 0 ? [weightBytes.push(b) - 1] : []));
  const c = new Int32Array(bytes.length + 1);
  for (let k = 1; k < bytes.length; k++) c[k] = crossings?.[k] ?? 1;
  return { positions: bytes.length, crossings: c, uses, weightBytes };
}

function* combinations(items: number[], k: number, from = 0): Generator<number[]> {
  if (k === 0) {
    yield [];
    return;
  }
  for (let i = from; i <= items.length - k; i++) {
    for (const rest of combinations(items, k - 1, i + 1)) yield [items[i]!, ...rest];
  }
}

function maxCost(p: CutProblem, cuts: number[]): number {
  const bounds = [0, ...cuts, p.positions];
  return Math.max(...stageWeightBytes(p, cuts).map((b, s) => b + (bounds[s + 1]! - bounds[s]!)));
}

test("the dynamic programme finds the optimal cuts (checked by brute force, shared weights included)", () => {
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let trial = 0; trial < 60; trial++) {
    const positions = 3 + rand(9);
    const weights = Array.from({ length: 1 + rand(6) }, () => rand(5000));
    const uses = Array.from({ length: positions }, () => {
      const u = new Set<number>();
      for (let i = rand(3); i > 0; i--) u.add(rand(weights.length));
      return [...u];
    });
    const p: CutProblem = { positions, crossings: new Int32Array(positions + 1), uses, weightBytes: weights };
    const candidates = Array.from({ length: positions - 1 }, (_, i) => i + 1).filter(() => rand(4) > 0);
    for (let stages = 1; stages <= candidates.length + 1; stages++) {
      let best = Infinity;
      for (const cuts of combinations(candidates, stages - 1)) best = Math.min(best, maxCost(p, cuts));
      const cuts = bestCuts(p, candidates, stages)!;
      assert.equal(cuts.length, stages - 1);
      assert.ok(cuts.every((c) => candidates.includes(c)));
      assert.equal(maxCost(p, cuts), best, `trial ${trial}, ${stages} stages`);
    }
    assert.equal(bestCuts(p, candidates, candidates.length + 2), undefined);
  }
});

test("the balancing pass evens out the stages the largest one leaves free (checked by brute force)", () => {
  const p = chain([1000, 10, 10, 10, 10, 10, 10, 10, 10]);
  const all = [1, 2, 3, 4, 5, 6, 7, 8];
  const minMax = bestCuts(p, all, 4)!;
  assert.equal(maxCost(p, minMax), 1001);
  const balanced = balancedCuts(p, all, 4, 1001, minMax);
  assert.deepEqual(stageWeightBytes(p, balanced).sort(), [1000, 20, 30, 30].sort());
  let seed = 99;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const squares = (q: CutProblem, cuts: number[]) => {
    const bounds = [0, ...cuts, q.positions];
    return stageWeightBytes(q, cuts).reduce((n, b, s) => n + (b + bounds[s + 1]! - bounds[s]!) ** 2, 0);
  };
  for (let trial = 0; trial < 40; trial++) {
    const q = chain(Array.from({ length: 4 + rand(7) }, () => rand(3) * rand(1000)));
    const candidates = Array.from({ length: q.positions - 1 }, (_, i) => i + 1).filter(() => rand(5) > 0);
    const stages = 1 + rand(candidates.length + 1);
    const limit = maxCost(q, bestCuts(q, candidates, stages)!);
    let best = Infinity;
    for (const cuts of combinations(candidates, stages - 1)) {
      if (maxCost(q, cuts) <= limit) best = Math.min(best, squares(q, cuts));
    }
    const cuts = balancedCuts(q, candidates, stages, limit, bestCuts(q, candidates, stages)!);
    assert.ok(maxCost(q, cuts) <= limit);
    assert.equal(squares(q, cuts), best, `trial ${trial}`);
  }
});

test("single-tensor cuts win when they balance well enough; otherwise more crossings are accepted", () => {
  // Cuts crossed by one tensor only at 1 and 7 (of 8 equal layers): 3 stages would be 1/6/1 layers.
  const crossings = [0, 1, 2, 2, 2, 2, 2, 1];
  const p = chain(
    [10, 10, 10, 10, 10, 10, 10, 10].map((b) => b * MiB),
    crossings,
  );
  const two = planStageCount(p, 2);
  assert.equal(two.threshold, 2, "a 1/7 split is too lopsided for 2 stages");
  assert.deepEqual(two.cuts, [4]);
  const balanced = chain(
    [10, 10, 10, 10, 10, 10, 10, 10].map((b) => b * MiB),
    [0, 2, 2, 2, 1, 2, 2, 2],
  );
  const plan = planStageCount(balanced, 2);
  assert.deepEqual([plan.cuts, plan.threshold], [[4], 1]);
  assert.deepEqual(plan.stageBytes, [40 * MiB, 40 * MiB]);
});

test("a weight shared by two stages is paid by both", () => {
  const p: CutProblem = {
    positions: 3,
    crossings: new Int32Array([0, 1, 1, 0]),
    uses: [[0], [1], [0]],
    weightBytes: [100, 50],
  };
  assert.deepEqual(stageWeightBytes(p, [1]), [100, 150]);
  assert.deepEqual(stageWeightBytes(p, []), [150]);
});

test("the fewest stages under a size limit, and the segment that cannot fit", () => {
  const p = chain([4, 4, 4, 4, 4, 4, 0, 0].map((b) => b * MiB));
  const greedy = greedyCuts(p, [1, 2, 3, 4, 5, 6, 7], 8 * MiB);
  assert.ok("cuts" in greedy && greedy.cuts.length === 2);
  const plan = planMaxStageBytes(p, 9 * MiB, () => "?");
  assert.equal(plan.cuts.length + 1, 3);
  assert.ok(plan.stageBytes.every((b) => b <= 9 * MiB));
  assert.throws(
    () => planMaxStageBytes(p, 3 * MiB, (s, e) => `nodes ${s}..${e}`),
    (e) =>
      isCicadaError(e, "E_USAGE") && /nodes 0\.\.1 cannot be split and needs 4194304 bytes/.test(e.message),
  );
});

test("the default stage count: one per 32 MiB, between 4 and 32, at most what the graph allows", () => {
  assert.equal(defaultStageCount(0, 100), 4);
  assert.equal(defaultStageCount(100 * MiB, 100), 4);
  assert.equal(defaultStageCount(200 * MiB, 100), 7);
  assert.equal(defaultStageCount(30 * 1024 * MiB, 100), 32);
  assert.equal(defaultStageCount(30 * 1024 * MiB, 9), 9);
  assert.equal(defaultStageCount(0, 2), 2);
});

// Median and percentiles as the benchmark reports them, and the rotated order of the strategies.
import { test } from "node:test";
import assert from "node:assert/strict";
import { median, quantile, rotation, summarize } from "../../src/metrics/stats.js";

test("quantile interpolates linearly between closest ranks", () => {
  const v = [10, 40, 20, 30];
  assert.equal(quantile(v, 0), 10);
  assert.equal(quantile(v, 1), 40);
  assert.equal(quantile(v, 0.5), 25);
  assert.ok(Math.abs(quantile(v, 0.1) - 13) < 1e-12);
  assert.ok(Math.abs(quantile(v, 0.9) - 37) < 1e-12);
  assert.deepEqual(v, [10, 40, 20, 30], "the input is not reordered");
});

test("median of odd and even counts, one value, and none", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([7]), 7);
  assert.ok(Number.isNaN(median([])));
});

test("quantile refuses a q outside [0, 1]", () => {
  assert.throws(() => quantile([1], 1.5), RangeError);
  assert.throws(() => quantile([1], -0.1), RangeError);
  assert.throws(() => quantile([1], NaN), RangeError);
});

test("summarize gives median, p10, p90, min, max and count", () => {
  const s = summarize([5, 1, 4, 2, 3]);
  assert.deepEqual({ median: s.median, min: s.min, max: s.max, n: s.n }, { median: 3, min: 1, max: 5, n: 5 });
  assert.ok(Math.abs(s.p10 - 1.4) < 1e-12);
  assert.ok(Math.abs(s.p90 - 4.6) < 1e-12);
  const empty = summarize([]);
  assert.equal(empty.n, 0);
  assert.ok(Number.isNaN(empty.median) && Number.isNaN(empty.min));
});

test("rotation puts every item in every position once over a full cycle", () => {
  const items = ["a", "b", "c"];
  assert.deepEqual(rotation(items, 0), ["a", "b", "c"]);
  assert.deepEqual(rotation(items, 1), ["b", "c", "a"]);
  assert.deepEqual(rotation(items, 4), ["b", "c", "a"]);
  for (let pos = 0; pos < items.length; pos++) {
    const seen = new Set([0, 1, 2].map((r) => rotation(items, r)[pos]));
    assert.equal(seen.size, items.length);
  }
  assert.deepEqual(rotation([], 3), []);
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { isCicadaError } from "../../src/errors.js";
import { agrees, compareTensors, describeSimilarity, similarity } from "../../src/metrics/similarity.js";
import { numberToFloat16 } from "../../src/util/half-float.js";

test("identical arrays have cosine 1 and no difference", () => {
  const a = new Float32Array([1, -2, 3.5]);
  const s = similarity(a, a);
  assert.deepEqual(
    { cosine: s.cosine, maxAbsDiff: s.maxAbsDiff, mismatches: s.nonFiniteMismatches },
    { cosine: 1, maxAbsDiff: 0, mismatches: 0 },
  );
  assert.ok(agrees(s, 0.99999));
});

test("opposite arrays have cosine -1; the largest difference is reported", () => {
  const s = similarity([1, 2], [-1, -2]);
  assert.ok(Math.abs(s.cosine + 1) < 1e-12);
  assert.equal(s.maxAbsDiff, 4);
  assert.ok(!agrees(s, 0.99999));
});

test("NaN and Infinity at the same positions are the same answer; the finite rest is compared", () => {
  const expected = new Float32Array([1, NaN, 2, Infinity, -Infinity, 3]);
  const actual = new Float32Array([1, NaN, 2.5, Infinity, -Infinity, 3]);
  const s = similarity(actual, expected);
  assert.equal(s.nonFiniteMatches, 3);
  assert.equal(s.nonFiniteMismatches, 0);
  assert.equal(s.maxAbsDiff, 0.5);
  // The cosine of [1, 2.5, 3] and [1, 2, 3], not NaN.
  const want = (1 + 5 + 9) / (Math.sqrt(1 + 6.25 + 9) * Math.sqrt(1 + 4 + 9));
  assert.ok(Math.abs(s.cosine - want) < 1e-12, `${s.cosine}`);
  // All non-finite, all matching: nothing finite differs.
  assert.ok(agrees(similarity([NaN, -Infinity], [NaN, -Infinity]), 0.99999));
});

test("a non-finite value in one tensor and not the other fails every threshold and is counted", () => {
  for (const [a, b] of [
    [NaN, 1],
    [1, NaN],
    [Infinity, -Infinity],
    [Infinity, NaN],
    [-Infinity, 3],
  ] as const) {
    const s = similarity([5, a, 7], [5, b, 7]);
    assert.equal(s.nonFiniteMismatches, 1, `${a} vs ${b}`);
    assert.ok(!(s.cosine >= 0.99999), "the cosine alone fails a threshold too");
    assert.equal(s.maxAbsDiff, Infinity);
    assert.ok(!agrees(s, 0.99999));
    // The finite rest is still measured, for messages.
    assert.equal(s.finite.cosine, 1);
    assert.match(describeSimilarity(s), /1 non-finite position differ/);
  }
});

test("bigint tensors compare too; lengths must agree", () => {
  assert.ok(
    Math.abs(similarity(new BigInt64Array([1n, 2n]), new BigInt64Array([1n, 2n])).cosine - 1) < 1e-12,
  );
  assert.throws(() => similarity([1], [1, 2]), /1 and 2 elements/);
});

test("finite values too large to square are compared scaled, not as NaN", () => {
  const s = similarity(new Float64Array([1e300, 2e300]), new Float64Array([1e300, 2e300]));
  assert.ok(Math.abs(s.cosine - 1) < 1e-12, `${s.cosine}`);
  assert.equal(s.maxAbsDiff, 0);
  const d = similarity(new Float64Array([1e300, 2e300]), new Float64Array([1e300, 3e300]));
  assert.ok(d.cosine < 0.999 && Math.abs(d.maxAbsDiff - 1e300) / 1e300 < 1e-9, JSON.stringify(d));
});

test("tensors: half floats are compared by value (NaN bits included); dtype and shape must agree", () => {
  const half = (values: number[]) => ({
    dtype: "float16" as const,
    dims: [values.length],
    data: Uint16Array.from(values, numberToFloat16),
  });
  const s = compareTensors(half([1, NaN, -2]), half([1, NaN, -2]), "y");
  assert.equal(s.nonFiniteMatches, 1);
  assert.ok(Math.abs(s.cosine - 1) < 1e-12);
  assert.equal(compareTensors(half([1, NaN, 2]), half([1, 2, 2]), "y").nonFiniteMismatches, 1);
  assert.throws(
    () =>
      compareTensors(
        { dtype: "float32", dims: [3], data: new Float32Array(3) },
        { dtype: "float32", dims: [1, 3], data: new Float32Array(3) },
        "output 'y'",
      ),
    (e) => isCicadaError(e, "E_RUNTIME") && /output 'y': float32 \[3\].*float32 \[1,3\]/.test(e.message),
  );
});

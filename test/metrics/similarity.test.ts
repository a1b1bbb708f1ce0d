import { test } from "node:test";
import assert from "node:assert/strict";
import { similarity } from "../../src/metrics/similarity.js";

test("identical arrays have cosine 1 and no difference", () => {
  const a = new Float32Array([1, -2, 3.5]);
  assert.deepEqual(similarity(a, a), { cosine: 1, maxAbsDiff: 0 });
});

test("opposite arrays have cosine -1; the largest difference is reported", () => {
  const s = similarity([1, 2], [-1, -2]);
  assert.ok(Math.abs(s.cosine + 1) < 1e-12);
  assert.equal(s.maxAbsDiff, 4);
});

test("a NaN makes the cosine NaN, which fails any threshold", () => {
  const s = similarity([1, Number.NaN], [1, 2]);
  assert.ok(!(s.cosine >= 0.99999));
});

test("bigint tensors compare too; lengths must agree", () => {
  assert.ok(
    Math.abs(similarity(new BigInt64Array([1n, 2n]), new BigInt64Array([1n, 2n])).cosine - 1) < 1e-12,
  );
  assert.throws(() => similarity([1], [1, 2]), /1 and 2 elements/);
});

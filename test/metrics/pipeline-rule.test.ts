// The pipeline dependency rule: what each unit task waits for (trace.test.ts shows the metrics measure
// waiting by it).
import assert from "node:assert/strict";
import { test } from "node:test";
import { dependenciesOf } from "../../src/metrics/pipeline-rule.js";

test("A_i waits for L_i and R_i, and for A_{i-1} only under the strict rule", () => {
  assert.deepEqual(dependenciesOf({ unit: "A", stage: 2 }, "strict"), [
    { unit: "L", stage: 2 },
    { unit: "R", stage: 2 },
    { unit: "A", stage: 1 },
  ]);
  assert.deepEqual(dependenciesOf({ unit: "A", stage: 2 }, "relaxed"), [
    { unit: "L", stage: 2 },
    { unit: "R", stage: 2 },
  ]);
  assert.deepEqual(dependenciesOf({ unit: "A", stage: 0 }, "strict"), [
    { unit: "L", stage: 0 },
    { unit: "R", stage: 0 },
  ]);
});

test("L, R and E follow their own previous stage; E_i waits for L_i where there is no A", () => {
  assert.deepEqual(dependenciesOf({ unit: "L", stage: 0 }, "strict"), []);
  assert.deepEqual(dependenciesOf({ unit: "R", stage: 3 }, "relaxed"), [{ unit: "R", stage: 2 }]);
  assert.deepEqual(dependenciesOf({ unit: "E", stage: 1 }, "strict"), [
    { unit: "A", stage: 1 },
    { unit: "E", stage: 0 },
  ]);
  assert.deepEqual(dependenciesOf({ unit: "E", stage: 1 }, "strict", false), [
    { unit: "L", stage: 1 },
    { unit: "E", stage: 0 },
  ]);
});

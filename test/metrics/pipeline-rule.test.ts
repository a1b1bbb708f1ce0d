// The pipeline dependency rule: what each unit task waits for, and that the metrics measure waiting by it
// (a relaxed trace does not charge A_i for waiting on A_{i-1}).
import assert from "node:assert/strict";
import { test } from "node:test";
import { dependenciesOf } from "../../src/metrics/pipeline-rule.js";
import { unitTimes, type Trace, type Unit } from "../../src/metrics/trace.js";

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

test("waiting is measured under the trace's hazard rule", () => {
  const ev = (unit: Unit, stage: number, start: number, end: number) => ({
    unit,
    stage,
    worker: "w",
    start,
    end,
    bytes: 0,
  });
  // A1 could start at 3 (L1, R1 done) but started at 10, after A0: strict charges it nothing (A0 ended at
  // 10), relaxed charges it the 7 ms it waited.
  const events = [ev("L", 0, 0, 1), ev("R", 0, 0, 2), ev("A", 0, 2, 10), ev("L", 1, 1, 2), ev("R", 1, 2, 3)];
  events.push(ev("A", 1, 10, 12));
  const trace: Trace = { requestStart: 0, requestEnd: 12, events };
  assert.equal(unitTimes(trace).A.waitMs, 0);
  assert.equal(unitTimes({ ...trace, hazard: "strict" }).A.waitMs, 0);
  assert.equal(unitTimes({ ...trace, hazard: "relaxed" }).A.waitMs, 7);
});

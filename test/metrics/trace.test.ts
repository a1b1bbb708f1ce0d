import { test } from "node:test";
import assert from "node:assert/strict";
import { unionLength, unitTimes, utilization, type Trace } from "../../src/metrics/trace.js";

const ev = (unit: "L" | "R" | "A" | "E", stage: number, start: number, end: number) => ({
  unit,
  stage,
  worker: "w",
  start,
  end,
  bytes: 0,
});

test("union of intervals merges overlaps and skips gaps", () => {
  assert.equal(
    unionLength([
      { start: 0, end: 2 },
      { start: 1, end: 3 },
      { start: 5, end: 6 },
    ]),
    4,
  );
  assert.equal(unionLength([]), 0);
});

test("utilisation is the active share of the pipeline's span", () => {
  const trace: Trace = { requestStart: 0, requestEnd: 10, events: [ev("R", 0, 0, 4), ev("E", 0, 6, 10)] };
  assert.equal(utilization(trace), 0.8);
});

test("waiting time counts from when a task's dependencies were done", () => {
  const trace: Trace = {
    requestStart: 0,
    requestEnd: 20,
    events: [
      ev("L", 0, 0, 2),
      ev("R", 0, 0, 5),
      ev("A", 0, 6, 8),
      ev("E", 0, 8, 10),
      ev("L", 1, 2, 4),
      ev("R", 1, 5, 7),
      ev("A", 1, 8, 9),
      ev("E", 1, 12, 14),
    ],
  };
  const t = unitTimes(trace);
  assert.equal(t.A.workMs, 3);
  // A0 ready at 5 (R0), started at 6: waits 1; A1 ready at max(L1 4, R1 7, A0 8) = 8: waits 0.
  assert.equal(t.A.waitMs, 1);
  // E1 ready at max(A1 9, E0 10) = 10, started 12.
  assert.equal(t.E.waitMs, 2);
  assert.equal(t.L.waitMs, 0);
});

test("waiting is measured under the trace's hazard rule", () => {
  // A1 could start at 3 (L1, R1 done) but started at 10, after A0: strict charges it nothing (A0 ended at
  // 10), relaxed charges it the 7 ms it waited.
  const events = [ev("L", 0, 0, 1), ev("R", 0, 0, 2), ev("A", 0, 2, 10), ev("L", 1, 1, 2), ev("R", 1, 2, 3)];
  events.push(ev("A", 1, 10, 12));
  const trace: Trace = { requestStart: 0, requestEnd: 12, events };
  assert.equal(unitTimes(trace).A.waitMs, 0);
  assert.equal(unitTimes({ ...trace, hazard: "strict" }).A.waitMs, 0);
  assert.equal(unitTimes({ ...trace, hazard: "relaxed" }).A.waitMs, 7);
});

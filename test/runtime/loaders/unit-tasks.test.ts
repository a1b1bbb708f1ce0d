// The loaders order their tasks by the pipeline rule through UnitTasks: under the strict hazard rule A_i
// cannot start before A_{i-1} has settled; under the relaxed rule it starts once L_i and R_i are done.
import assert from "node:assert/strict";
import { test } from "node:test";
import { UnitTasks } from "../../../src/runtime/loaders/unit-tasks.js";

/** A promise and its resolver. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

async function settlesSoon(p: Promise<void>): Promise<boolean> {
  return Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 50))]);
}

for (const hazard of ["strict", "relaxed"] as const) {
  test(`${hazard}: A_1 ${hazard === "strict" ? "waits for" : "does not wait for"} A_0`, async () => {
    const tasks = new UnitTasks(hazard);
    const a0 = deferred();
    void tasks.set({ unit: "L", stage: 1 }, Promise.resolve());
    void tasks.set({ unit: "R", stage: 1 }, Promise.resolve());
    void tasks.set({ unit: "A", stage: 0 }, a0.promise);
    const a1 = tasks.after({ unit: "A", stage: 1 });
    assert.equal(await settlesSoon(a1), hazard === "relaxed");
    a0.resolve();
    assert.equal(await settlesSoon(a1), true);
  });
}

test("a failed dependency does not hold the next task up, and a missing one counts as done", async () => {
  const tasks = new UnitTasks("strict");
  void tasks.set({ unit: "A", stage: 0 }, Promise.reject(new Error("stage 0 failed")));
  assert.equal(await settlesSoon(tasks.after({ unit: "A", stage: 1 })), true);
  const l1 = deferred();
  void tasks.set({ unit: "L", stage: 1 }, l1.promise);
  // R_1 is left out by the caller (the stall rule waits for it separately): only L_1 holds A_1 up.
  const a1 = tasks.after({ unit: "A", stage: 1 }, ["R"]);
  assert.equal(await settlesSoon(a1), false);
  l1.resolve();
  assert.equal(await settlesSoon(a1), true);
});

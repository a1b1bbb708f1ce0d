// The paper's pipeline dependency rule, in one place: what each unit task of a stage waits for. The
// loaders order their work by it (runtime/loaders/) and the metrics measure waiting against it
// (trace.ts's unitTimes), so changing the rule changes both.
//   L_i after L_{i-1}        structures are constructed in stage order
//   R_i after R_{i-1}        retrievals are issued in stage order
//   A_i after L_i and R_i,   and, under the `strict` hazard rule, after A_{i-1} (applications in order)
//   E_i after A_i (or L_i where construction binds the weights itself: no A task) and E_{i-1}
import type { Hazard } from "../config.js";
import type { Unit } from "./trace.js";

/** One unit task: a unit of one stage. */
export interface UnitTask {
  unit: Unit;
  stage: number;
}

/**
 * The unit tasks `task` waits for under `hazard`. `applied` says whether stage i has an A task (false for a
 * loader whose L binds the weights, so that E_i waits for L_i). A first task waits for nothing.
 */
export function dependenciesOf(task: UnitTask, hazard: Hazard, applied = true): UnitTask[] {
  const i = task.stage;
  const previous = (unit: Unit): UnitTask[] => (i > 0 ? [{ unit, stage: i - 1 }] : []);
  switch (task.unit) {
    case "L":
    case "R":
      return previous(task.unit);
    case "A":
      return [
        { unit: "L", stage: i },
        { unit: "R", stage: i },
        ...(hazard === "strict" ? previous("A") : []),
      ];
    case "E":
      return [{ unit: applied ? "A" : "L", stage: i }, ...previous("E")];
  }
}

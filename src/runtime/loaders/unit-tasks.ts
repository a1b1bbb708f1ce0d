// The unit tasks of one load, by unit and stage, so that a loader starts each task once the tasks it
// depends on under the pipeline rule (metrics/pipeline-rule.ts) have settled: the order is the rule's, not
// written again in each loader.
import type { Hazard } from "../../config.js";
import { dependenciesOf, type UnitTask } from "../../metrics/pipeline-rule.js";
import type { Unit } from "../../metrics/trace.js";

export class UnitTasks {
  private readonly tasks = new Map<string, Promise<unknown>>();

  constructor(private readonly hazard: Hazard) {}

  /** Registers the promise of `task` (its failure is reported by whoever awaits it, not here). */
  set<T>(task: UnitTask, promise: Promise<T>): Promise<T> {
    promise.catch(() => {});
    this.tasks.set(`${task.unit}${task.stage}`, promise);
    return promise;
  }

  /**
   * Settles when every task `task` depends on has settled, whether it succeeded or not (a failed stage does
   * not stop the next one from loading), leaving out the units in `except` (which the caller waits for
   * itself, e.g. R under the stall rule). Dependencies never registered count as done.
   */
  async after(task: UnitTask, except: readonly Unit[] = []): Promise<void> {
    const deps = dependenciesOf(task, this.hazard).filter((d) => !except.includes(d.unit));
    const pending = deps.flatMap((d) => this.tasks.get(`${d.unit}${d.stage}`) ?? []);
    await Promise.allSettled(pending);
  }
}

// What a loader is: the L, R and A of one family of strategies, behind one interface, so that the loaded
// model (runtime/model/) runs every strategy with the same execution loop and no strategy branch. The
// families are the paper's: whole-model (eager, ort-best, cicada's whole plan), sequential (pisel, mini:
// stage i built completely before stage i+1) and decoupled (preload, cicada's pipeline: the
// WeightDecoupler's retrievals in the background, A ordered by the hazard rule, the stall rule).
import type { Bundle } from "../../format/bundle.js";
import type { LoadOptions } from "../model/model-api.js";
import type { StageSessions } from "../model/stage-sessions.js";
import type { StageSlot } from "../model/stage-slot.js";
import type { Runtime } from "../runtime.js";

/** What a loader works with: the model's bundle, options, runtime and its stage sessions. */
export interface LoaderContext {
  runtime: Runtime;
  bundle: Bundle;
  options: LoadOptions;
  sessions: StageSessions;
}

/** The loading of one model's stages. */
export interface Loader {
  /** One promise per slot, settled when its session exists (or could not be made): the cold start's L/R/A. */
  start(slots: readonly StageSlot[]): Promise<void>[];
  /** Makes one slot's session again, outside the pipeline (after a failure, a worker's death, a changed file). */
  reload(slot: StageSlot): Promise<void>;
  /**
   * Whether a stage whose load failed with `error` can be rebuilt within the request (a cache entry that
   * failed its check is gone, so a reload builds it anew).
   */
  rebuilds(error: unknown): boolean;
  /**
   * Resolves when the weights the sessions compute from are verified, rejects when they failed (a request's
   * outputs are then not returned). Loaders that verify before creating resolve at once.
   */
  verified(): Promise<void>;
  /** Stops background work (retrievals) at dispose. */
  abort(reason: Error): Promise<void>;
}

/**
 * What most loaders are: no stage rebuilt within a request, nothing to verify after creation (they verify
 * before), nothing running in the background. Loaders that differ override these.
 */
export abstract class BaseLoader implements Loader {
  abstract start(slots: readonly StageSlot[]): Promise<void>[];
  abstract reload(slot: StageSlot): Promise<void>;

  rebuilds(_error: unknown): boolean {
    return false;
  }

  verified(): Promise<void> {
    return Promise.resolve();
  }

  async abort(_reason: Error): Promise<void> {}
}

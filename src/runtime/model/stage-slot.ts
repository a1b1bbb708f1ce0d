// A stage of a loaded model and its lifecycle: unloaded → loading → ready, or failed; a ready stage is
// unloaded again when its worker dies or a file under its session changes; released at dispose. One
// transition function refuses illegal moves, so that no code path can, say, run a released stage.
import { CicadaError } from "../../errors.js";

export type StageState = "unloaded" | "loading" | "ready" | "failed" | "released";

const LEGAL: Record<StageState, StageState[]> = {
  unloaded: ["loading", "released"],
  loading: ["ready", "failed", "released"],
  ready: ["unloaded", "released"],
  failed: ["loading", "released"],
  released: [],
};

/** One stage's session: where it lives and its state. */
export interface StageSlot {
  index: number;
  /** The executor's worker that holds the session. */
  worker: number;
  /** The session's key at the executor (unique per model and stage). */
  key: string;
  state: StageState;
  /** Settles when the current load (or reload) of this stage does. */
  ready: Promise<void>;
}

/** `count` unloaded slots of model `id`, spread over `workers` workers. */
export function createSlots(id: string, count: number, workers: number): StageSlot[] {
  return Array.from({ length: count }, (_, i) => ({
    index: i,
    worker: i % workers,
    key: `${id}:${i}`,
    state: "unloaded",
    ready: Promise.resolve(),
  }));
}

/** Moves `slot` to `to`, or throws E_RUNTIME for a move the lifecycle does not allow. */
export function transition(slot: StageSlot, to: StageState): void {
  if (!LEGAL[slot.state].includes(to)) {
    throw new CicadaError("E_RUNTIME", `stage ${slot.index}: illegal lifecycle move ${slot.state} -> ${to}`);
  }
  slot.state = to;
}

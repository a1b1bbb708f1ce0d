// The tensors alive between the stages of one request: the graph inputs, then each stage's outputs that a
// later stage reads, each dropped after the last stage that reads it (so a pipeline holds only live
// activations). Used by the loaded model's execution and by the sequential reference runner.
import { CicadaError } from "../../errors.js";
import type { HostTensor } from "../host-tensor.js";

export class Activations {
  /** For each tensor, the last stage that reads it. */
  private readonly lastUse = new Map<string, number>();
  private readonly live: Map<string, HostTensor>;
  private readonly graphInputs: Set<string>;

  constructor(
    /** The tensor names each stage reads, by stage index. */
    private readonly stageInputs: readonly (readonly string[])[],
    feeds: Record<string, HostTensor>,
    /** Where the tensors come from, for errors. */
    private readonly what: string,
  ) {
    stageInputs.forEach((names, i) => names.forEach((n) => this.lastUse.set(n, i)));
    this.live = new Map(Object.entries(feeds));
    this.graphInputs = new Set(Object.keys(feeds));
  }

  /**
   * The feeds of `stage`. With `copy`, a tensor the caller still owns (a graph input), that a later stage
   * reads again, or that `keepAll` asks to keep is copied (feeds may be transferred to a worker); the
   * others are handed over and forgotten.
   */
  feedsOf(stage: number, copy: boolean, keepAll = false): Record<string, HostTensor> {
    const feeds: Record<string, HostTensor> = {};
    for (const name of this.stageInputs[stage]!) {
      const t = this.live.get(name);
      if (!t) {
        throw new CicadaError(
          "E_OUTPUT_MISSING",
          `${this.what}: stage ${stage} reads '${name}', which no earlier stage produced`,
        );
      }
      const keep = this.graphInputs.has(name) || (this.lastUse.get(name) ?? -1) > stage || keepAll;
      feeds[name] = copy && keep ? { ...t, data: t.data.slice() } : t;
      if (!keep) this.live.delete(name);
    }
    return feeds;
  }

  /** Keeps the outputs of `stage` that a later stage reads. */
  produced(stage: number, outputs: Record<string, HostTensor>): void {
    for (const [name, t] of Object.entries(outputs)) {
      if ((this.lastUse.get(name) ?? -1) > stage) this.live.set(name, t);
    }
  }
}

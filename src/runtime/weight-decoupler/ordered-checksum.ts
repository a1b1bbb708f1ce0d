// A stage's weights are verified as they pass: its chunks complete out of order (several lanes read at
// once), so their crc32 is folded in chunk order as each earlier chunk arrives, and compared with the
// manifest's checksum when the stage is complete (E_BUNDLE_CHECKSUM on a mismatch).
import { crc32 } from "node:zlib";
import { CicadaError } from "../../errors.js";
import { formatCrc32 } from "../../format/checksum.js";
import type { RetrievalRange } from "./retrieval-types.js";

/** The form of a range's checksum: `crc32:` and 8 hex digits. */
export const CHECKSUM_FORMAT = /^crc32:[0-9a-f]{8}$/;

/**
 * A crc32 over chunks that complete out of order: each chunk is folded when every earlier one has been;
 * `fold` resolves once its chunk is in (so the caller may reuse the chunk's memory).
 */
export class OrderedChecksum {
  value = 0;
  private next = 0;
  private readonly ready = new Map<number, { bytes: Uint8Array; done: () => void }>();

  /** `enabled` false: nothing is folded (the range has no checksum) and `fold` resolves at once. */
  constructor(private readonly enabled: boolean) {}

  /** Releases every waiting chunk: an earlier chunk failed, so the checksum will not be used. */
  cancel(): void {
    for (const c of this.ready.values()) c.done();
    this.ready.clear();
    this.next = Infinity;
  }

  /** Folds chunk `index` once every earlier chunk is in; resolves when it has been folded. */
  fold(index: number, bytes: Uint8Array): Promise<void> {
    if (!this.enabled || this.next === Infinity) return Promise.resolve();
    return new Promise<void>((done) => {
      this.ready.set(index, { bytes, done });
      for (let c = this.ready.get(this.next); c; c = this.ready.get(this.next)) {
        this.ready.delete(this.next++);
        this.value = crc32(c.bytes, this.value);
        c.done();
      }
    });
  }
}

/** Throws E_BUNDLE_CHECKSUM if the range has a checksum and `crc` is not it. */
export function verifyChecksum(range: RetrievalRange, crc: number): void {
  if (range.checksum === undefined) return;
  const found = formatCrc32(crc);
  if (found !== range.checksum) {
    throw new CicadaError(
      "E_BUNDLE_CHECKSUM",
      `${range.path}: weights of stage ${range.stage} (bytes ${range.offset}..${range.offset + range.length}) fail their checksum: expected ${range.checksum}, found ${found}`,
    );
  }
}

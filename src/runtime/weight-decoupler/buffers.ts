// The retriever's memory: page-aligned allocation (see the NOTE: reads into misaligned memory are slower)
// for buffer mode's stage buffers, and prefetch mode's scratch, chunk-sized views reused by every stage
// (one set of lanes per stage in flight, allocated once).

/** The page size reads are aligned to. */
export const PAGE_BYTES = 4096;

/**
 * NOTE: glibc serves large allocations (ArrayBuffer backing stores among them) with mmap, and the block
 * starts 16 bytes (its header) past a page boundary; page-cache reads into such memory measured 2-5x
 * slower than into page-aligned memory. Smaller blocks come from the heap, where the view is merely
 * 16-byte aligned, which is harmless.
 */
const MALLOC_HEADER_BYTES = 16;

/** A view of `length` fresh bytes that starts on a page boundary when the allocation was mmap'd. */
export function allocatePageAligned(length: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(length + PAGE_BYTES), PAGE_BYTES - MALLOC_HEADER_BYTES, length);
}

/**
 * Prefetch mode's scratch: `sets` sets (one per stage in flight) of `lanes` views each, as long as a chunk
 * (or the longest range, if shorter) rounded up to pages; one page-aligned block, allocated on first use.
 * A stage takes a set when it starts and gives it back when it ends.
 */
export class ScratchSets {
  private free: Uint8Array[][] | undefined;

  constructor(
    private readonly chunkBytes: number,
    private readonly longestRange: number,
    private readonly lanes: number,
    private readonly sets: number,
  ) {}

  /** One chunk-sized view per lane, for one stage's reads. */
  take(): Uint8Array[] {
    if (!this.free) {
      const slotBytes = Math.ceil(Math.min(this.chunkBytes, this.longestRange) / PAGE_BYTES) * PAGE_BYTES;
      const memory = allocatePageAligned(slotBytes * this.lanes * this.sets);
      const view = (i: number) => memory.subarray(i * slotBytes, (i + 1) * slotBytes);
      this.free = Array.from({ length: this.sets }, (_, i) =>
        Array.from({ length: this.lanes }, (_, j) => view(i * this.lanes + j)),
      );
    }
    return this.free.pop()!;
  }

  /** Gives a set taken with {@link take} back. */
  give(set: Uint8Array[]): void {
    this.free!.push(set);
  }
}

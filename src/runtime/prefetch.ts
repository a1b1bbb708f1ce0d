// Retrieval that needs no JavaScript while it runs: every chunk read of a file is queued to libuv's
// thread pool at once, so the page cache fills in file order even while the main thread is blocked in a
// synchronous onnxruntime create or run (the inline executor). Only for bytes that need no checksum on
// the way (verified before, per file identity): the reads land in one scratch buffer and are discarded.
import { open } from "node:fs/promises";
import { now, type TraceEvent } from "../metrics/trace.js";

/** Chunk of one queued read. */
const CHUNK_BYTES = 4 << 20;

/**
 * Reads `length` bytes of `path` into the page cache with all reads queued at once; resolves with the R
 * event of the whole file (start of the first read to end of the last). A read failure only ends the
 * prefetch early: execution faults in whatever is missing.
 */
export async function prefetchFile(path: string, length: number, stage = 0): Promise<TraceEvent> {
  const start = now();
  const handle = await open(path, "r");
  const scratch = Buffer.allocUnsafeSlow(Math.min(CHUNK_BYTES, Math.max(1, length)));
  let bytes = 0;
  try {
    const reads: Promise<void>[] = [];
    for (let offset = 0; offset < length; offset += CHUNK_BYTES) {
      const n = Math.min(CHUNK_BYTES, length - offset);
      reads.push(
        handle.read(scratch, 0, n, offset).then(({ bytesRead }) => {
          bytes += bytesRead;
        }),
      );
    }
    await Promise.allSettled(reads);
  } finally {
    await handle.close();
  }
  return { unit: "R", stage, worker: "main", start, end: now(), bytes };
}

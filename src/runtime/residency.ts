// Is a file range already in the page cache? Node has no mincore(2), so we time one small read of the
// range's start: page-cache hits are memory copies (several GB/s), disk reads are not (here at most
// ~1.2 GB/s, and slower for a small read that pays a whole device round trip). Retrieval of a resident
// range would only burn CPU the executor needs on a small machine, so the WeightDecoupler skips it.
import { closeSync, openSync, readSync } from "node:fs";
import { performance } from "node:perf_hooks";

/** Bytes read by the probe. */
const PROBE_BYTES = 256 * 1024;
/** A probe faster than this many bytes per second came from memory. */
export const RESIDENT_BANDWIDTH = 2e9;

/** The probe's destination, allocated and touched once: first-touch page faults would cost more than the read. */
const probeBuffer = Buffer.alloc(PROBE_BYTES);

/**
 * True if the first bytes of `path` at `offset` read at page-cache speed (a heuristic; see above).
 * NOTE: the read is synchronous on purpose: an asynchronous read's time is dominated by the hop to libuv's
 * thread pool (~50-100 µs), which would hide the difference being measured. It blocks for at most one
 * small read.
 */
export function looksResident(path: string, offset: number, length: number): boolean {
  if (length === 0) return true;
  const n = Math.min(PROBE_BYTES, length);
  const fd = openSync(path, "r");
  try {
    const t0 = performance.now();
    const bytesRead = readSync(fd, probeBuffer, 0, n, offset);
    const seconds = (performance.now() - t0) / 1000;
    return bytesRead === n && n / Math.max(seconds, 1e-9) >= RESIDENT_BANDWIDTH;
  } finally {
    closeSync(fd);
  }
}

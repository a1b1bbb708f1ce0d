// Is a file range already in the page cache? Node has no mincore(2), so we time one small read of the
// range's start: page-cache hits are memory copies (several GB/s), disk reads are not (here at most
// ~1.2 GB/s, and slower for a small read that pays a whole device round trip). Retrieval of a resident
// range would only burn CPU the executor needs on a small machine, so the WeightDecoupler skips it.
import { open } from "node:fs/promises";
import { performance } from "node:perf_hooks";

/** Bytes read by the probe. */
const PROBE_BYTES = 64 * 1024;
/** A probe faster than this many bytes per second came from memory. */
export const RESIDENT_BANDWIDTH = 2e9;

/** True if the first bytes of `path` at `offset` read at page-cache speed (a heuristic; see above). */
export async function looksResident(path: string, offset: number, length: number): Promise<boolean> {
  if (length === 0) return true;
  const n = Math.min(PROBE_BYTES, length);
  const handle = await open(path, "r");
  try {
    const buffer = Buffer.allocUnsafe(n);
    const t0 = performance.now();
    const { bytesRead } = await handle.read(buffer, 0, n, offset);
    const seconds = (performance.now() - t0) / 1000;
    return bytesRead === n && n / Math.max(seconds, 1e-9) >= RESIDENT_BANDWIDTH;
  } finally {
    await handle.close();
  }
}

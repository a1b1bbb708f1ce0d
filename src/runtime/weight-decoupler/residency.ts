// Is a file range already in the page cache? Node has no mincore(2), so we time small reads spread over
// the range: page-cache hits are memory copies (several GB/s even for data cold in the CPU's caches), disk
// reads are not (here at most ~1.5 GB/s sustained, and far slower for a small read that pays a whole
// device round trip). Retrieval of a resident range would only burn CPU the executor needs on a small
// machine, so the WeightDecoupler skips it; and cicada's planner builds no pipeline when nothing is to be
// retrieved.
import { closeSync, openSync, readSync } from "node:fs";
import { performance } from "node:perf_hooks";

/** Bytes of each probe read. */
const PROBE_BYTES = 64 * 1024;
/** Probe reads per range (at its start, end and evenly between). */
const PROBES = 5;
/** A probe faster than this many bytes per second came from memory. */
export const RESIDENT_BANDWIDTH = 1.5e9;
/** Below this size a range counts as resident: reading it costs less than probing it reliably would. */
export const SMALL_RANGE_BYTES = 1 << 20;

/** The probes' destination, allocated and touched once: first-touch page faults would cost more than a read. */
const probeBuffer = Buffer.alloc(PROBE_BYTES);
let warmedUp = false;

/** One timed read; Infinity when it came back short. */
function probeMs(fd: number, offset: number, n: number): number {
  const t0 = performance.now();
  const got = readSync(fd, probeBuffer, 0, n, offset);
  return got === n ? performance.now() - t0 : Infinity;
}

/**
 * True if `length` bytes of `path` at `offset` look resident: at least all but one of the probe reads
 * spread over the range ran at page-cache speed (one may be slowed by a busy CPU).
 * NOTE: the reads are synchronous on purpose: an asynchronous read's time is dominated by the hop to libuv's
 * thread pool (~50-100 µs), which would hide the difference being measured. The first read of a process is
 * slow whatever its source (measured 0.3-0.4 ms for 256 KiB in the page cache), so the path is warmed
 * once on /dev/zero.
 */
export function looksResident(path: string, offset: number, length: number): boolean {
  if (length < SMALL_RANGE_BYTES) return true;
  if (!warmedUp) {
    const zero = openSync("/dev/zero", "r");
    for (let i = 0; i < 3; i++) readSync(zero, probeBuffer, 0, PROBE_BYTES, null);
    closeSync(zero);
    warmedUp = true;
  }
  const page = 4096;
  const span = Math.floor((length - PROBE_BYTES) / page) * page;
  const fd = openSync(path, "r");
  try {
    // Stop at the second slow probe: the range can no longer pass, and on an evicted file each further
    // probe is a synchronous device round trip (~1 ms here) on the thread that starts the retrievals.
    let slow = 0;
    for (let k = 0; k < PROBES; k++) {
      const at = offset + Math.floor((span * k) / (PROBES - 1) / page) * page;
      if (PROBE_BYTES / (probeMs(fd, at, PROBE_BYTES) / 1000) < RESIDENT_BANDWIDTH && ++slow > 1)
        return false;
    }
    return true;
  } finally {
    closeSync(fd);
  }
}

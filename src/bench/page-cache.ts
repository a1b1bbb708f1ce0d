// The page cache, for the `cold` cache setting: evicting the files a cold start will read, checking the
// eviction took effect, and measuring what the disk delivers when nothing is cached.
// NOTE: Node has no posix_fadvise; `dd if=F iflag=nocache count=0` calls posix_fadvise(DONTNEED) on the
// whole of one file (probe 6 in /work/notes/ort-probes.md: fincore showed 0 pages left), which evicts
// exactly the benchmark's files instead of every cache on a shared machine (drop_caches). Pages still
// mapped by a process, or dirty, stay: evict after the previous cold start has released its sessions.
import { execFile } from "node:child_process";
import { closeSync, constants, existsSync, openSync, readSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import { CicadaError } from "../errors.js";

const run = promisify(execFile);

/** Drops `path`'s pages from the page cache. */
export async function evictFile(path: string): Promise<void> {
  if (!existsSync(path)) throw new CicadaError("E_BUNDLE_FILE", `cannot evict ${path}: it does not exist`);
  try {
    await run("dd", [`if=${path}`, "iflag=nocache", "count=0", "status=none"]);
  } catch (e) {
    throw new CicadaError(
      "E_USAGE",
      `--cache cold: 'dd if=${path} iflag=nocache count=0' failed (${(e as Error).message.trim()}); it needs GNU dd`,
      { cause: e },
    );
  }
}

/** Drops every one of `paths` from the page cache. */
export async function evictFiles(paths: readonly string[]): Promise<void> {
  for (const p of new Set(paths)) await evictFile(p);
}

/** Bytes of the probe read (as the runtime's residency probe: large enough to time, small to be cheap). */
export const PROBE_BYTES = 256 * 1024;

const probeBuffer = Buffer.alloc(PROBE_BYTES);

/**
 * Bandwidth (bytes/s) of one synchronous read of up to {@link PROBE_BYTES} at `offset` of `path`.
 * NOTE: synchronous on purpose: an asynchronous read's time would be dominated by the hop to libuv's
 * thread pool, hiding the difference between a page-cache copy and a disk read.
 */
export function probeReadBandwidth(path: string, offset = 0): number {
  const fd = openSync(path, "r");
  try {
    const n = Math.max(1, Math.min(PROBE_BYTES, statSync(path).size - offset));
    const t0 = performance.now();
    const got = readSync(fd, probeBuffer, 0, n, offset);
    const seconds = Math.max((performance.now() - t0) / 1000, 1e-9);
    return got / seconds;
  } finally {
    closeSync(fd);
  }
}

/** Outcome of an eviction check. */
export interface EvictionCheck {
  path: string;
  /** Probe read right after eviction. */
  coldBytesPerS: number;
  /** The same read again, now from the page cache. */
  warmBytesPerS: number;
  /** The cold read was clearly slower than the warm one: the eviction took effect. */
  evicted: boolean;
}

/** A cold probe this many times slower than the warm one counts as a disk read. */
export const EVICTED_RATIO = 3;

/**
 * Checks that `path` (already evicted) is read from disk: times a probe read, then the same read warm,
 * then evicts the file again so the cold start that follows finds it evicted.
 */
export async function verifyEviction(path: string): Promise<EvictionCheck> {
  const coldBytesPerS = probeReadBandwidth(path);
  const warmBytesPerS = probeReadBandwidth(path);
  await evictFile(path);
  return { path, coldBytesPerS, warmBytesPerS, evicted: coldBytesPerS * EVICTED_RATIO <= warmBytesPerS };
}

/** The largest of `paths` (the best one to probe or to measure bandwidth on). */
export function largestFile(paths: readonly string[]): string {
  if (paths.length === 0) throw new CicadaError("E_USAGE", "no file to measure");
  return paths.reduce((best, p) => (statSync(p).size > statSync(best).size ? p : best));
}

/** Measured disk read bandwidth. */
export interface DiskBandwidth {
  path: string;
  bytes: number;
  bytesPerS: number;
  /** `O_DIRECT`, or `evicted` (page cache dropped, then buffered reads) where O_DIRECT is refused. */
  method: "O_DIRECT" | "evicted";
}

const CHUNK = 8 << 20;
const IN_FLIGHT = 4;

/**
 * Offset into `buf` where an O_DIRECT read is accepted (the buffer's address aligned to the device's
 * logical block). JavaScript cannot see addresses, so this tries one-page reads at offsets 0, 16, 32, …;
 * a misaligned one fails with EINVAL. Undefined if none does. NOTE: 512-byte trial reads were accepted at
 * every offset here (and a misaligned 8 MiB read then failed); a whole page is checked properly.
 */
function alignedOffset(fd: number, buf: Buffer): number | undefined {
  for (let off = 0; off + 4096 <= buf.byteLength && off <= 4096; off += 16) {
    try {
      readSync(fd, buf, off, 4096, 0);
      return off;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EINVAL") throw e;
    }
  }
  return undefined;
}

/** Reads the first `size` bytes of `path` into `region` at `base`, 4 reads in flight; returns bytes read. */
async function readThrough(
  path: string,
  size: number,
  region: Buffer,
  base: number,
  direct: boolean,
): Promise<number> {
  const handle = await open(path, direct ? constants.O_RDONLY | constants.O_DIRECT : "r");
  try {
    let next = 0;
    let done = 0;
    const lane = async (slot: number): Promise<void> => {
      const view = region.subarray(base + slot * CHUNK, base + (slot + 1) * CHUNK);
      while (next < size) {
        const offset = next;
        next += CHUNK;
        // Direct reads must be whole blocks: the last one asks for a full chunk and gets what is left.
        const length = direct ? CHUNK : Math.min(CHUNK, size - offset);
        const { bytesRead } = await handle.read(view, 0, length, offset);
        done += Math.min(bytesRead, size - offset);
        if (bytesRead === 0) break;
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, (_, i) => lane(i)));
    return done;
  } finally {
    await handle.close();
  }
}

/**
 * Reads the first `maxBytes` of `path` with direct I/O (bypassing the page cache), 8 MiB per read with 4
 * in flight, and returns the bandwidth. Where O_DIRECT is refused (tmpfs, some overlays, tiny files) it
 * evicts the file and reads it buffered instead: what a cold start meets.
 */
export async function measureDiskBandwidth(path: string, maxBytes = 512 << 20): Promise<DiskBandwidth> {
  const size = Math.min(statSync(path).size, maxBytes);
  const region = Buffer.allocUnsafeSlow(IN_FLIGHT * CHUNK + 4096);
  // Touch the destination first so first-touch page faults are not timed as disk time.
  region.fill(0);
  let base: number | undefined;
  if (size >= 1 << 20) {
    let fd: number | undefined;
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_DIRECT);
      base = alignedOffset(fd, region);
    } catch {
      base = undefined;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
  if (base !== undefined) {
    try {
      const t0 = performance.now();
      const bytes = await readThrough(path, size, region, base, true);
      const seconds = Math.max((performance.now() - t0) / 1000, 1e-9);
      return { path, bytes, bytesPerS: bytes / seconds, method: "O_DIRECT" };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EINVAL") throw e;
    }
  }
  await evictFile(path);
  const t0 = performance.now();
  const bytes = await readThrough(path, size, region, 0, false);
  const seconds = Math.max((performance.now() - t0) / 1000, 1e-9);
  return { path, bytes, bytesPerS: bytes / seconds, method: "evicted" };
}

/**
 * Bytes of `path` the page cache holds, as fincore(1) (util-linux) counts them from mincore(2); undefined
 * where fincore is missing or cannot tell.
 */
export async function residentBytes(path: string): Promise<number | undefined> {
  try {
    const { stdout } = await run("fincore", ["--bytes", "--noheadings", "--output", "RES", path]);
    const bytes = Number(stdout.trim());
    return Number.isFinite(bytes) ? bytes : undefined;
  } catch {
    return undefined;
  }
}

/** How much of a set of files was in the page cache just before a cold start. */
export interface Residency {
  bytes: number;
  /** Undefined where fincore is not available. */
  residentBytes?: number;
}

/** Sums the resident bytes of `paths` (see {@link residentBytes}). */
export async function residencyOf(paths: readonly string[]): Promise<Residency> {
  let bytes = 0;
  let resident: number | undefined = 0;
  for (const p of new Set(paths)) {
    const size = statSync(p).size;
    bytes += size;
    const r = await residentBytes(p);
    // fincore counts whole pages: a file's last partial page would count past its size.
    resident = r === undefined || resident === undefined ? undefined : resident + Math.min(r, size);
  }
  return resident === undefined ? { bytes } : { bytes, residentBytes: resident };
}

/**
 * Reads every one of `paths` once, 8 MiB per read with 4 in flight, so that a `warm` cold start finds them
 * in the page cache: with models larger than a few GiB the strategies' files together exceed the memory,
 * and each strategy's run would otherwise evict the next one's. Refuses files that cannot all fit.
 */
export async function makeResident(paths: readonly string[], availableBytes: number): Promise<void> {
  const unique = [...new Set(paths)];
  const total = unique.reduce((n, p) => n + statSync(p).size, 0);
  if (total > availableBytes * 0.9) {
    throw new CicadaError(
      "E_USAGE",
      `--cache warm: the files of one cold start (${(total / 2 ** 30).toFixed(1)} GiB) do not fit in the page cache (${(availableBytes / 2 ** 30).toFixed(1)} GiB available); use --cache cold`,
    );
  }
  const region = Buffer.allocUnsafeSlow(IN_FLIGHT * CHUNK);
  for (const p of unique) await readThrough(p, statSync(p).size, region, 0, false);
}

// Page-cache helpers on a temporary file: eviction (checked with fincore, the kernel's own count of
// resident pages, where available), the eviction check and the disk bandwidth reads. Nothing is timed:
// bandwidths are only checked to be measured, not to have any value.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { isCicadaError } from "../../src/errors.js";
import {
  evictFile,
  evictFiles,
  largestFile,
  makeResident,
  measureDiskBandwidth,
  residencyOf,
  residentBytes,
  verifyEviction,
} from "../../src/bench/page-cache.js";

const root = await mkdtemp(join(tmpdir(), "cicada-page-cache-"));
test.after(() => rm(root, { recursive: true, force: true }));

const big = join(root, "big.bin");
const small = join(root, "small.bin");
await writeFile(big, randomBytes(3 << 20));
await writeFile(small, randomBytes(5000));
// Written pages are dirty, and dirty pages cannot be dropped: flush them to disk first.
execFileSync("sync", [big, small]);

test("evictFile drops a file from the page cache", async (t) => {
  await readFile(big);
  const before = await residentBytes(big);
  if (before === undefined) return t.skip("fincore is not available");
  assert.ok(before > 0, "the file was read, so it is cached");
  await evictFile(big);
  assert.equal(await residentBytes(big), 0);
});

test("verifyEviction probes the file and leaves it evicted", async (t) => {
  await evictFiles([big, small, big]);
  const check = await verifyEviction(big);
  assert.equal(check.path, big);
  assert.ok(check.coldBytesPerS > 0 && check.warmBytesPerS > 0);
  assert.equal(typeof check.evicted, "boolean");
  const after = await residentBytes(big);
  if (after === undefined) return t.skip("fincore is not available");
  assert.equal(after, 0, "the probe's pages were evicted again");
});

test("evictFile names a missing file", async () => {
  await assert.rejects(
    evictFile(join(root, "nope.bin")),
    (e) => isCicadaError(e, "E_BUNDLE_FILE") && /nope\.bin/.test(e.message),
  );
});

test("largestFile picks the biggest and refuses an empty list", () => {
  assert.equal(largestFile([small, big, small]), big);
  assert.throws(
    () => largestFile([]),
    (e) => isCicadaError(e, "E_USAGE"),
  );
});

test("measureDiskBandwidth reads the whole file (direct I/O for large files, evicted reads for tiny ones)", async () => {
  const large = await measureDiskBandwidth(big);
  assert.equal(large.bytes, 3 << 20);
  assert.ok(large.bytesPerS > 0);
  assert.ok(large.method === "O_DIRECT" || large.method === "evicted");
  const capped = await measureDiskBandwidth(big, 1 << 20);
  assert.equal(capped.bytes, 1 << 20);
  const tiny = await measureDiskBandwidth(small);
  assert.deepEqual([tiny.bytes, tiny.method], [5000, "evicted"]);
});

test("makeResident reads evicted files back into the page cache; residencyOf counts them", async (t) => {
  await evictFiles([big, small]);
  const evicted = await residencyOf([big, small, big]);
  assert.equal(evicted.bytes, (3 << 20) + 5000, "each file counted once");
  if (evicted.residentBytes === undefined) return t.skip("fincore is not available");
  assert.equal(evicted.residentBytes, 0);
  await makeResident([big, small], 1 << 30);
  const resident = await residencyOf([big, small]);
  assert.equal(resident.residentBytes, resident.bytes);
});

test("makeResident refuses files that cannot fit in the page cache", async () => {
  await assert.rejects(
    makeResident([big], 1 << 20),
    (e) => isCicadaError(e, "E_USAGE") && /do not fit in the page cache/.test(e.message),
  );
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isCicadaError } from "../../src/errors.js";
import { createOnce, writeFileAtomic, writeOutputDir } from "../../src/format/atomic-output.js";
import { mountTmpfs } from "./tmpfs.js";

test("an output directory appears only when complete, and a failure leaves nothing", async () => {
  const root = await mkdtemp(join(tmpdir(), "cicada-atomic-"));
  try {
    const dest = join(root, "out");
    await assert.rejects(
      writeOutputDir(dest, async (dir) => {
        await writeFile(join(dir, "half.txt"), "partial");
        throw new Error("boom");
      }),
      /boom/,
    );
    assert.deepEqual(await readdir(root), []);
    await writeOutputDir(dest, async (dir) => writeFile(join(dir, "whole.txt"), "done"));
    assert.ok(existsSync(join(dest, "whole.txt")));
    await assert.rejects(
      writeOutputDir(dest, async () => {}),
      (e) => isCicadaError(e, "E_OUTPUT_EXISTS") && e.message.includes(dest),
    );
    assert.deepEqual(await readdir(root), ["out"]);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test("a disk that fills mid-write gives E_NO_SPACE naming the file and the space, and leaves nothing", async (t) => {
  const fs = await mountTmpfs(1 << 20);
  if ("skip" in fs) return t.skip(fs.skip);
  try {
    const dest = join(fs.dir, "out");
    // 2 MiB into 1 MiB: the write itself fails (nothing said beforehand how much it needs).
    await assert.rejects(
      writeOutputDir(dest, (dir) => writeFile(join(dir, "weights.bin"), new Uint8Array(2 << 20))),
      (e) =>
        isCicadaError(e, "E_NO_SPACE") &&
        /no space left on the device writing .*\.out\.tmp-\d+-[0-9a-f]+\/weights\.bin \(output .*\/out\)/.test(
          e.message,
        ) &&
        /bytes \([\d.]+ MiB\) were written before the disk filled; [\d,]+ bytes \([\d.]+ MiB\) free now/.test(
          e.message,
        ),
    );
    assert.deepEqual(await readdir(fs.dir), [], "nothing half-written");
    // Told beforehand (expectedBytes, or a large file): refused before anything is written.
    await assert.rejects(
      writeOutputDir(dest, () => Promise.reject(new Error("must not start")), { expectedBytes: 8 << 20 }),
      (e) => isCicadaError(e, "E_NO_SPACE") && /needs 8,388,608 bytes \(8\.0 MiB\)/.test(e.message),
    );
    await assert.rejects(
      writeFileAtomic(join(fs.dir, "big.json"), new Uint8Array(3 << 20)),
      (e) => isCicadaError(e, "E_NO_SPACE") && e.message.includes("big.json"),
    );
    // A cache entry: the advice is the cache's.
    await assert.rejects(
      createOnce(join(fs.dir, "entry"), () =>
        writeOutputDir(join(fs.dir, "entry"), (dir) => writeFile(join(dir, "data"), new Uint8Array(2 << 20))),
      ),
      (e) =>
        isCicadaError(e, "E_NO_SPACE") &&
        /cache entry .*entry.*cicada cache prune.*CICADA_CACHE/.test(e.message),
    );
    assert.deepEqual(await readdir(fs.dir), []);
  } finally {
    await fs.unmount();
  }
});

test("a read-only file system gives E_CACHE for a cache entry and E_USAGE for an output, naming them", async (t) => {
  const fs = await mountTmpfs(1 << 20, { readOnly: true, prepare: (dir) => mkdirSync(join(dir, "cache")) });
  if ("skip" in fs) return t.skip(fs.skip);
  try {
    const entry = join(fs.dir, "cache", "pisel", "abc");
    await assert.rejects(
      createOnce(entry, () => writeOutputDir(entry, async () => {})),
      (e) =>
        isCicadaError(e, "E_CACHE") &&
        e.message.includes(`cache entry ${entry} cannot be written (EROFS: the file system is read-only`) &&
        e.message.includes("set CICADA_CACHE to a writable directory"),
    );
    await assert.rejects(
      writeFileAtomic(join(fs.dir, "outputs.json"), "{}"),
      (e) =>
        isCicadaError(e, "E_USAGE") && /output .*outputs\.json cannot be written \(EROFS/.test(e.message),
    );
    assert.deepEqual(await readdir(fs.dir), ["cache"]);
  } finally {
    await fs.unmount();
  }
});

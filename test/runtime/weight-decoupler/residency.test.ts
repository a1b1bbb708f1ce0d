import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, fsyncSync, openSync, writeSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { looksResident } from "../../../src/runtime/weight-decoupler/residency.js";

test("a file just read is resident; after eviction from the page cache it is not", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cicada-resident-"));
  try {
    const file = join(dir, "w.bin");
    const fd = openSync(file, "w");
    writeSync(fd, Buffer.alloc(8 << 20, 7));
    fsyncSync(fd);
    closeSync(fd);
    // Warm it, then ask.
    looksResident(file, 0, 8 << 20);
    assert.equal(looksResident(file, 0, 8 << 20), true);
    assert.equal(looksResident(file, 0, 0), true);
    // NOTE: dd's iflag=nocache drops the file's clean pages (POSIX_FADV_DONTNEED), as the benchmark's cold cache does.
    execFileSync("dd", [`if=${file}`, "iflag=nocache", "count=0"], { stdio: "ignore" });
    assert.equal(looksResident(file, 4 << 20, 4 << 20), false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a range below a megabyte counts as resident; a file only partly in the page cache does not", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cicada-resident-"));
  try {
    const file = join(dir, "w.bin");
    const fd = openSync(file, "w");
    writeSync(fd, Buffer.alloc(64 << 20, 7));
    fsyncSync(fd);
    closeSync(fd);
    execFileSync("dd", [`if=${file}`, "iflag=nocache", "count=0"], { stdio: "ignore" });
    assert.equal(looksResident(file, 0, (1 << 20) - 1), true, "too small to be worth probing");
    // Read the start back in (the kernel's readahead takes up to 8 MiB more here): the probes further on
    // still go to the disk.
    execFileSync("dd", [`if=${file}`, "of=/dev/null", "bs=1M", "count=4"], { stdio: "ignore" });
    assert.equal(looksResident(file, 0, 64 << 20), false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

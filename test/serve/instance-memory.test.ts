// Instance memory from /proc: the smaps_rollup parser on a captured text, this process and a child read
// by pid, and PSS below RSS when pages are shared (a child maps the same node binary as its parent).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { parseSmapsRollup, readInstanceMemory } from "../../src/serve/instance-memory.js";

const ROLLUP = `557229cee000-7ffe65891000 ---p 00000000 00:00 0                          [rollup]
Rss:                1632 kB
Pss:                 605 kB
Pss_Dirty:           112 kB
Pss_Anon:            112 kB
Pss_File:            493 kB
Pss_Shmem:             0 kB
Shared_Clean:       1308 kB
`;

test("smaps_rollup: Pss and its anonymous, file and shmem parts in bytes", () => {
  assert.deepEqual(parseSmapsRollup(ROLLUP), {
    pssBytes: 605 * 1024,
    pssAnonBytes: 112 * 1024,
    pssFileBytes: 493 * 1024,
    pssShmemBytes: 0,
  });
  // Kernels before 5.9 have only Pss.
  assert.equal(parseSmapsRollup("Rss: 10 kB\nPss: 7 kB\n").pssAnonBytes, 0);
  assert.throws(() => parseSmapsRollup("Rss: 10 kB\n"), /no 'Pss: <n> kB' line/);
});

test("this process and a child by pid: PSS counts shared pages proportionally", async () => {
  const self = readInstanceMemory();
  assert.equal(self.pid, process.pid);
  assert.ok(self.rssAnonBytes > 0 && self.rssAnonBytes <= self.rssBytes);
  assert.ok(self.pssBytes > 0 && self.pssBytes <= self.rssBytes);
  const child = spawn(process.execPath, ["-e", "console.log('up'); setInterval(() => {}, 1000)"], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  try {
    // Measured once node runs in it (not the forked copy of this process before exec).
    await new Promise((r) => child.stdout.once("data", r));
    const other = readInstanceMemory(child.pid);
    assert.equal(other.pid, child.pid);
    assert.ok(other.pssBytes < other.rssBytes, `shared pages: pss ${other.pssBytes} < rss ${other.rssBytes}`);
  } finally {
    child.kill("SIGKILL");
  }
  assert.throws(() => readInstanceMemory(2 ** 22 + 1), /ENOENT/);
});

// Process memory from /proc: the status and smaps_rollup parsers on captured texts, this process and a
// child read by pid, and PSS below RSS when pages are shared (a child maps the same node binary as its
// parent).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import {
  parseProcStatus,
  parseSmapsRollup,
  processMemoryOf,
  readProcessMemory,
  readProcStatus,
} from "../../src/metrics/proc-memory.js";

const STATUS = `Name:\tnode
Umask:\t0022
State:\tS (sleeping)
VmPeak:\t 1234567 kB
VmHWM:\t  204800 kB
VmRSS:\t  196608 kB
RssAnon:\t   43008 kB
RssFile:\t  153600 kB
RssShmem:\t       0 kB
Threads:\t11
`;

test("parseProcStatus reads VmRSS, RssAnon and RssFile in bytes", () => {
  assert.deepEqual(parseProcStatus(STATUS), {
    rssBytes: 196608 * 1024,
    rssAnonBytes: 43008 * 1024,
    rssFileBytes: 153600 * 1024,
  });
});

test("parseProcStatus names a missing field", () => {
  assert.throws(() => parseProcStatus(STATUS.replace(/^RssFile:.*$/m, "")), /RssFile:/);
  // VmHWM is not VmRSS: the label must match a whole line start.
  assert.throws(() => parseProcStatus("VmHWM:\t 1 kB\nRssAnon:\t 1 kB\nRssFile:\t 1 kB\n"), /VmRSS:/);
});

test("readProcStatus of this process is consistent (RSS = anon + file + shmem)", () => {
  const s = readProcStatus();
  const shmem =
    Number(/^RssShmem:\s+(\d+)/m.exec(readFileSync("/proc/self/status", "latin1"))?.[1] ?? 0) * 1024;
  assert.ok(s.rssBytes > 0 && s.rssAnonBytes > 0 && s.rssFileBytes > 0);
  // The kernel's counters are read at slightly different moments: allow a few pages of drift.
  assert.ok(Math.abs(s.rssBytes - (s.rssAnonBytes + s.rssFileBytes + shmem)) < 1 << 20);
});

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

test("processMemoryOf: a pid's RSS and RssAnon from its status, its PSS parts from its rollup", () => {
  assert.deepEqual(processMemoryOf(42, STATUS, ROLLUP), {
    pid: 42,
    rssBytes: 196608 * 1024,
    rssAnonBytes: 43008 * 1024,
    pssBytes: 605 * 1024,
    pssAnonBytes: 112 * 1024,
    pssFileBytes: 493 * 1024,
    pssShmemBytes: 0,
  });
  assert.throws(() => processMemoryOf(42, "Name:\tnode\n", ROLLUP), /VmRSS:/);
});

test("this process and a child by pid: PSS counts shared pages proportionally", async () => {
  const self = readProcessMemory();
  assert.equal(self.pid, process.pid);
  assert.ok(self.rssAnonBytes > 0 && self.rssAnonBytes <= self.rssBytes);
  assert.ok(self.pssBytes > 0 && self.pssBytes <= self.rssBytes);
  const child = spawn(process.execPath, ["-e", "console.log('up'); setInterval(() => {}, 1000)"], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  try {
    // Measured once node runs in it (not the forked copy of this process before exec).
    await new Promise((r) => child.stdout.once("data", r));
    const other = readProcessMemory(child.pid);
    assert.equal(other.pid, child.pid);
    assert.ok(other.pssBytes < other.rssBytes, `shared pages: pss ${other.pssBytes} < rss ${other.rssBytes}`);
  } finally {
    child.kill("SIGKILL");
  }
  assert.throws(() => readProcessMemory(2 ** 22 + 1), /ENOENT/);
});

// Staging names and their owners on real processes: a dead owner's staging is stale, a live one's is not,
// and a live process that started after the staging last changed reuses the PID (stale). A rerun of the
// same output removes its stale staging, and only that destination's.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createOnce, writeFileAtomic, writeOutputDir } from "../../src/format/atomic-output.js";
import {
  cleanStaleStaging,
  parseStagingName,
  processStartMs,
  stagingOwnerAlive,
} from "../../src/format/staging.js";

const root = await mkdtemp(join(tmpdir(), "cicada-staging-"));
test.after(() => rm(root, { recursive: true, force: true }));

/** A child process that runs until killed; `exited` resolves when it is gone (reaped). */
function sleeper() {
  const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  return { pid: child.pid!, kill: () => child.kill("SIGKILL"), exited };
}

/** The PID of a process that existed and exited (not reused within the test). */
async function deadPid(): Promise<number> {
  const s = sleeper();
  s.kill();
  await s.exited;
  return s.pid;
}

test("staging names carry their destination, kind and owner", () => {
  assert.deepEqual(parseStagingName(".model.tmp-1234-0a1b2c3d"), { target: "model", kind: "tmp", pid: 1234 });
  assert.deepEqual(parseStagingName(".ab12.evicted-77-ffff0000"), {
    target: "ab12",
    kind: "evicted",
    pid: 77,
  });
  assert.deepEqual(parseStagingName(".a.b.tmp-5-0000"), { target: "a.b", kind: "tmp", pid: 5 });
  for (const name of [
    "model",
    ".model",
    ".model.tmp-x-00",
    ".model.tmp-12",
    ".report-tmp-abc",
    ".m.tmp-0-00aa",
  ])
    assert.equal(parseStagingName(name), undefined, name);
});

test("owners: this process and a live child are alive, an exited one is not, a reused PID is not", async () => {
  assert.ok(stagingOwnerAlive(process.pid, 0));
  assert.equal(stagingOwnerAlive(await deadPid(), Date.now()), false);
  const s = sleeper();
  try {
    const started = processStartMs(s.pid);
    assert.ok(started !== undefined && Math.abs(started - Date.now()) < 10_000, `start ${started}`);
    // Staging that changed after the child started: the child may own it.
    assert.ok(stagingOwnerAlive(s.pid, Date.now()));
    // Staging last changed a minute before the child started: its PID was reused, the owner is gone.
    assert.equal(stagingOwnerAlive(s.pid, Date.now() - 60_000), false);
  } finally {
    s.kill();
    await s.exited;
  }
});

test("a rerun of an output removes its stale staging (files and directories), not a live one's or another's", async () => {
  const dir = join(root, "rerun");
  await mkdir(dir);
  const dead = await deadPid();
  const s = sleeper();
  try {
    const stale = [`.out.tmp-${dead}-0badc0de`, `.out.evicted-${dead}-00000001`];
    const live = `.out.tmp-${s.pid}-0000cafe`;
    const other = `.other.tmp-${dead}-0000beef`;
    for (const name of [...stale, live, other]) {
      await mkdir(join(dir, name));
      await writeFile(join(dir, name, "half.bin"), new Uint8Array(4096));
    }
    await writeFile(join(dir, `.file.json.tmp-${dead}-12345678`), "{");
    await writeOutputDir(join(dir, "out"), (tmp) => writeFile(join(tmp, "whole.txt"), "done"));
    assert.deepEqual(
      (await readdir(dir)).sort(),
      [`.file.json.tmp-${dead}-12345678`, live, other, "out"].sort(),
    );
    await writeFileAtomic(join(dir, "file.json"), "{}");
    assert.ok(!existsSync(join(dir, `.file.json.tmp-${dead}-12345678`)));
    // createOnce of an existing entry does nothing; of a new one it cleans first.
    await mkdir(join(dir, `.entry.tmp-${dead}-aaaaaaaa`));
    await createOnce(join(dir, "entry"), () => writeOutputDir(join(dir, "entry"), async () => {}));
    assert.ok(existsSync(join(dir, "entry")) && !existsSync(join(dir, `.entry.tmp-${dead}-aaaaaaaa`)));
    assert.deepEqual(await cleanStaleStaging(join(dir, "other")), [join(dir, other)]);
    assert.ok(existsSync(join(dir, live)), "a live owner's staging is never removed");
  } finally {
    s.kill();
    await s.exited;
  }
});

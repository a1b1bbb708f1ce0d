// What a killed or failing command leaves behind, on real processes and real file systems: `cicada zoo`
// and `cicada demo` killed (SIGKILL) mid-write leave staging named after their PID; a rerun of the same
// output removes it, `cicada cache list` shows it with its owner gone and `cicada cache prune` removes it.
// A full disk (a small tmpfs) and a read-only cache give coded errors and leave nothing half-written.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseStagingName } from "../../src/format/staging.js";
import { mountTmpfs } from "../format/tmpfs.js";
import { cicada, json } from "../support/cli.js";

const BIN = fileURLToPath(new URL("../../bin/cicada.js", import.meta.url));
const root = await mkdtemp(join(tmpdir(), "cicada-leftovers-"));
test.after(() => rm(root, { recursive: true, force: true }));

/** Every staging name under `dir`, at any depth. */
function stagingUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const found: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (parseStagingName(name)) found.push(path);
    else if (statSync(path).isDirectory()) found.push(...stagingUnder(path));
  }
  return found;
}

function treeBytes(path: string): number {
  const s = statSync(path);
  return s.isDirectory() ? readdirSync(path).reduce((n, f) => n + treeBytes(join(path, f)), 0) : s.size;
}

/**
 * Runs `cicada ...args` and SIGKILLs it once a staging directory of its under `watch` holds at least
 * `bytes`; resolves with the staging path and the PID. Bounded: fails if that does not happen in 60 s.
 */
async function killMidWrite(args: string[], watch: string, bytes: number, env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  let done = false;
  void exited.then(() => (done = true));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const staging = stagingUnder(watch).find(
      (p) => parseStagingName(p.split("/").at(-1)!)?.pid === child.pid,
    );
    if (staging && treeBytes(staging) >= bytes) {
      child.kill("SIGKILL");
      await exited;
      return { staging, pid: child.pid! };
    }
    if (done)
      throw new Error(`cicada ${args.join(" ")} ended (${await exited}) before it was killed: ${stderr}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`cicada ${args.join(" ")}: no staging of 1 MiB under ${watch} within 60 s`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

test("zoo killed mid-write leaves staging named after it; a rerun of the same output removes it", async () => {
  const out = join(root, "model");
  const { staging, pid } = await killMidWrite(["zoo", "resnet50", "--out", out], root, 1 << 20);
  assert.ok(existsSync(staging) && !existsSync(out), "the kill left a half-written staging, no output");
  assert.match(staging, new RegExp(`/\\.model\\.tmp-${pid}-[0-9a-f]+$`));
  const r = await cicada(["zoo", "tiny-vgg", "--out", out]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(join(out, "model.onnx")));
  assert.deepEqual(stagingUnder(root), [], "the rerun removed the dead process's staging");
});

test("demo killed while generating into the cache: cache list shows the staging, prune removes it", async () => {
  const cache = join(root, "cache");
  const env = { CICADA_CACHE: cache };
  const { staging, pid } = await killMidWrite(["demo", "--model", "resnet50"], cache, 1 << 20, env);
  const list = await cicada(["cache", "list", "--json"], env);
  assert.equal(list.code, 0, list.stderr);
  const entries =
    json<{ dir: string; bytes: number; staging?: { pid: number; ownerAlive: boolean } }[]>(list);
  const leftover = entries.find((e) => e.dir === staging);
  assert.ok(leftover, `listed: ${list.stdout}`);
  assert.deepEqual(leftover.staging, { pid, ownerAlive: false, target: "resnet50-seed0", kind: "tmp" });
  assert.ok(leftover.bytes >= 1 << 20, `${leftover.bytes} bytes`);
  const pruned = await cicada(["cache", "prune", "--orphans"], env);
  assert.equal(pruned.code, 0, pruned.stderr);
  assert.match(pruned.stdout, /staging of resnet50-seed0 by PID \d+ \(gone/);
  assert.deepEqual(stagingUnder(cache), [], "nothing is left in the cache");
});

test("a full disk gives E_NO_SPACE (before writing when the size is known) and leaves nothing", async (t) => {
  const fs = await mountTmpfs(64 << 10);
  if ("skip" in fs) return t.skip(fs.skip);
  try {
    // The zoo knows a model's size: refused before anything is written.
    const zoo = await cicada(["zoo", "resnet50", "--out", join(fs.dir, "m")]);
    assert.equal(zoo.code, 1, zoo.stderr);
    assert.match(
      zoo.stderr,
      /cicada: E_NO_SPACE: zoo resnet50 \(--out .*\) needs 102,\d{3},\d{3} bytes \(97\.\d MiB\) on the file system of .*, which has [\d,]+ bytes \([\d.]+ MiB\) free/,
    );
    // The cache fills while the demo generates its model (102 KiB into 64 KiB).
    const demo = await cicada(["demo", "--model", "tiny-vgg"], { CICADA_CACHE: join(fs.dir, "cache") });
    assert.equal(demo.code, 1, demo.stderr);
    assert.match(
      demo.stderr,
      /cicada: E_NO_SPACE: no space left on the device writing .*\/\.tiny-vgg-seed0\.tmp-\d+-[0-9a-f]+\/model\.onnx\.data \(cache entry .*tiny-vgg-seed0\): .*free some space, run `cicada cache prune`, or set CICADA_CACHE/,
    );
    assert.doesNotMatch(demo.stderr, /internal error|    at /);
    assert.deepEqual(stagingUnder(fs.dir), []);
    assert.equal(treeBytes(fs.dir), 0, "nothing half-written");
  } finally {
    await fs.unmount();
  }
});

test("a read-only cache gives E_CACHE naming the entry and CICADA_CACHE, not an internal error", async (t) => {
  const fs = await mountTmpfs(1 << 20, { readOnly: true, prepare: (dir) => mkdirSync(join(dir, "cache")) });
  if ("skip" in fs) return t.skip(fs.skip);
  try {
    const r = await cicada(["demo", "--model", "tiny-vgg"], { CICADA_CACHE: join(fs.dir, "cache") });
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /cicada: E_CACHE: cache entry .*\/cache\/zoo\/tiny-vgg-seed0 cannot be written \(EROFS: the file system is read-only.*set CICADA_CACHE to a writable directory/,
    );
    const out = await cicada(["zoo", "tiny-vgg", "--out", join(fs.dir, "m")]);
    assert.equal(out.code, 2, out.stderr);
    assert.match(out.stderr, /cicada: E_USAGE: output .*\/m cannot be written \(EROFS/);
  } finally {
    await fs.unmount();
  }
});

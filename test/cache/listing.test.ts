// The cache root on a real cache: entries of every kind record their origin, a removed bundle orphans what
// was derived from it, a MiniLoader entry of another format or content is superseded, and pruning removes
// exactly what it selects (nothing on a dry run); staging left by a process that is gone is listed and
// pruned, a running one's is listed and kept.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { importModel } from "../../src/importer/import-model.js";
import { ORIGIN_FILE } from "../../src/cache/layout.js";
import { listCache } from "../../src/cache/listing.js";
import { pruneCache } from "../../src/cache/prune.js";
import { prepareModel } from "../../src/runtime/load-model.js";
import { createRuntime } from "../../src/runtime/runtime.js";
import { generateZooModel } from "../../src/zoo/registry.js";
import { cicada } from "../support/cli.js";

const root = await mkdtemp(join(tmpdir(), "cicada-cache-root-"));
const cacheRoot = join(root, "cache");
const runtime = await createRuntime({ cacheRoot, workers: 1, intraOpNumThreads: 1 });
test.after(async () => {
  await runtime.close();
  await rm(root, { recursive: true, force: true });
});

test("derived forms record their origin; removing the bundle orphans them; prune removes what it selects", async () => {
  const model = await generateZooModel("tiny-vgg", join(root, "tiny-vgg"), { seed: 1 });
  await importModel(model.modelPath, join(root, "kept"), { stages: 2 });
  await cp(join(root, "kept"), join(root, "doomed"), { recursive: true });
  for (const bundle of ["kept", "doomed"]) {
    for (const strategy of ["ort-best", "pisel", "cicada"] as const) {
      await prepareModel(runtime, join(root, bundle), strategy);
    }
  }
  // A MiniLoader entry of an older format: same bundle, another key.
  const stale = join(cacheRoot, "miniloader", "000000000000000000000000");
  await mkdir(stale);
  await writeFile(
    join(stale, "entry.json"),
    JSON.stringify({ key: "0", bundle: join(root, "kept"), stages: [] }),
  );

  const entries = await listCache(cacheRoot);
  const kinds = (k: string) => entries.filter((e) => e.kind === k);
  // The two bundles have the same content: they share the PISeL files; MiniLoader keys by content too.
  assert.equal(kinds("pisel").length, 1);
  assert.equal(kinds("ort-best").length, 1, "one source model");
  assert.equal(kinds("ort-best")[0]!.origin, model.modelPath);
  assert.equal(kinds("miniloader").length, 2, "the bundles' entry and the stale one");
  assert.ok(entries.every((e) => e.bytes >= 0 && e.lastUsedMs > 0));
  assert.deepEqual(
    entries.filter((e) => !e.current).map((e) => e.dir),
    [stale],
  );

  await rm(join(root, "doomed"), { recursive: true });
  await rm(model.modelPath);
  const orphaned = (await listCache(cacheRoot)).filter((e) => !e.originExists).map((e) => e.kind);
  assert.ok(orphaned.includes("ort-best"), `source gone: ${orphaned.join(", ")}`);

  const dry = await pruneCache(cacheRoot, { orphans: true, dryRun: true });
  assert.ok(dry.length >= 2);
  assert.ok(
    dry.every((e) => existsSync(e.dir)),
    "a dry run removes nothing",
  );
  const removed = await pruneCache(cacheRoot, { orphans: true });
  assert.deepEqual(
    removed.map((e) => e.dir),
    dry.map((e) => e.dir),
  );
  assert.ok(removed.every((e) => !existsSync(e.dir)));
  assert.ok(!existsSync(stale));
  // What is left is current and has its origin; nothing is older than a day yet.
  assert.deepEqual(await pruneCache(cacheRoot, { unusedDays: 1 }), []);
  const later = await pruneCache(cacheRoot, { unusedDays: 1, nowMs: Date.now() + 2 * 86_400_000 });
  assert.ok(later.length > 0);
  assert.deepEqual(await listCache(cacheRoot), []);
});

test("cicada cache prune without a selector is refused; cache list --json prints the entries", async () => {
  const env = { CICADA_CACHE: cacheRoot };
  const bad = await cicada(["cache", "prune"], env);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /E_USAGE: cache prune: say what to remove/);
  const list = await cicada(["cache", "list", "--json"], env);
  assert.equal(list.code, 0, list.stderr);
  assert.ok(Array.isArray(JSON.parse(list.stdout)));
});

test("staging beside and inside entries is listed with its owner; prune removes a dead owner's only", async () => {
  const cache = join(root, "staging-cache");
  const entry = join(cache, "pisel", "0123abcd");
  await mkdir(entry, { recursive: true });
  await writeFile(join(entry, ORIGIN_FILE), JSON.stringify({ origin: root }));
  // A process that exited (its PID is free) and one that runs.
  const dead = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((r) => dead.on("exit", r));
  const live = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
  const liveExited = new Promise((r) => live.on("exit", r));
  try {
    const leftovers = [
      join(cache, "miniloader", `.feedbeef.tmp-${dead.pid}-0a0b0c0d`),
      join(cache, "miniloader", `.feedbeef.evicted-${dead.pid}-01020304`),
      join(cache, "zoo", `.resnet50-seed0.tmp-${dead.pid}-00ff00ff`),
    ];
    for (const dir of leftovers) {
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, "model.onnx.data"), new Uint8Array(3000));
    }
    const inside = join(entry, `.stage-0.onnx.tmp-${dead.pid}-abcdef01`);
    await writeFile(inside, new Uint8Array(500));
    const running = join(cache, "bundles", `.tiny-seed0.tmp-${live.pid}-12345678`);
    await mkdir(running, { recursive: true });

    const listed = await listCache(cache);
    const staging = listed.filter((e) => e.staging);
    assert.deepEqual(staging.map((e) => e.dir).sort(), [...leftovers, inside, running].sort());
    for (const e of staging) {
      assert.equal(e.staging!.ownerAlive, e.dir === running, e.dir);
      assert.equal(e.bytes, leftovers.includes(e.dir) ? 3000 : e.dir === inside ? 500 : 0, e.dir);
    }
    const pisel = listed.find((e) => e.dir === entry)!;
    assert.equal(pisel.bytes, JSON.stringify({ origin: root }).length, "staging inside is not the entry's");
    assert.deepEqual(staging.find((e) => e.dir === leftovers[0])!.staging, {
      pid: dead.pid,
      ownerAlive: false,
      target: "feedbeef",
      kind: "tmp",
    });

    // The command shows them; a prune removes the dead owner's, never the running one's or the entry.
    const shown = await cicada(["cache", "list", "--root", cache]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, new RegExp(`staging of feedbeef by PID ${dead.pid} \\(gone: left over`));
    assert.match(shown.stdout, new RegExp(`staging of tiny-seed0 by PID ${live.pid} \\(running`));
    assert.match(shown.stdout, /1 entries, .*; 5 staging \(.*\), 4 of them left by processes that are gone/);
    const dry = await pruneCache(cache, { orphans: true, dryRun: true });
    assert.deepEqual(dry.map((e) => e.dir).sort(), [...leftovers, inside].sort());
    const pruned = await cicada(["cache", "prune", "--orphans", "--root", cache, "--json"]);
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.equal((JSON.parse(pruned.stdout) as { removed: unknown[] }).removed.length, 4);
    for (const dir of [...leftovers, inside]) assert.ok(!existsSync(dir), dir);
    assert.ok(existsSync(running) && existsSync(entry));
  } finally {
    live.kill("SIGKILL");
  }
  // Its owner gone, the last one goes too.
  await liveExited;
  const removed = await pruneCache(cache, { unusedDays: 365 });
  assert.deepEqual(
    removed.map((e) => e.staging?.target),
    ["tiny-seed0"],
  );
});

// Pruning the cache to a size: the least recently used derived forms go first and only until the cache
// fits; sources (zoo models, bundles) stay unless asked; an entry a live process uses (a loaded model maps
// its data file, or a live process writes inside it) is never removed, whatever the selector. The command
// reports sizes before and after and says when what is left cannot go.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ORIGIN_FILE, type CacheKind } from "../../src/cache/layout.js";
import { listCache } from "../../src/cache/listing.js";
import { pruneCache, totalBytes } from "../../src/cache/prune.js";
import { sizeFlag } from "../../src/cli/commands/cache.js";
import { isCicadaError } from "../../src/errors.js";
import { openBundle } from "../../src/format/bundle.js";
import { importModel } from "../../src/importer/import-model.js";
import { loadModel } from "../../src/runtime/load-model.js";
import { ensureOptimizedStages } from "../../src/runtime/miniloader/ensure.js";
import { createRuntime } from "../../src/runtime/runtime.js";
import { cicada, json } from "../support/cli.js";
import { inputX, writeMlp } from "../importer/tiny-models.js";

const root = await mkdtemp(join(tmpdir(), "cicada-prune-"));
test.after(() => rm(root, { recursive: true, force: true }));

/** An entry of `kind` holding `bytes` bytes of data, last used `daysAgo` days ago. */
async function entry(cache: string, kind: CacheKind, name: string, bytes: number, daysAgo: number) {
  const dir = join(cache, kind, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "payload.bin"), new Uint8Array(bytes));
  if (kind !== "zoo" && kind !== "bundles")
    await writeFile(join(dir, ORIGIN_FILE), JSON.stringify({ origin: root }));
  const when = new Date(Date.now() - daysAgo * 86_400_000);
  await utimes(dir, when, when);
  return dir;
}

test("--max-bytes removes the least recently used derived forms until the cache fits; sources only when asked", async () => {
  const cache = join(root, "sized");
  const a = await entry(cache, "pisel", "a", 1000, 5);
  const b = await entry(cache, "ort-best", "b", 2000, 4);
  const c = await entry(cache, "miniloader", "c", 3000, 1);
  const z = await entry(cache, "zoo", "z", 5000, 9);
  const y = await entry(cache, "bundles", "y", 4000, 2);
  const total = totalBytes(await listCache(cache));
  assert.ok(total > 15000 && total < 15200, `${total}`);

  // 13000 is reached once a and b are gone: c, the most recent, stays; the sources are not candidates.
  const dry = await pruneCache(cache, { maxBytes: 13000, dryRun: true });
  assert.deepEqual(
    dry.map((e) => e.dir),
    [a, b],
  );
  assert.ok(
    [a, b, c, y, z].every((d) => existsSync(d)),
    "a dry run removes nothing",
  );

  // Through the command: sizes accepted with units, before and after reported.
  const r = await cicada(["cache", "prune", "--root", cache, "--max-bytes", "5K", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const out = json<{ removed: { dir: string }[]; bytesBefore: number; bytesAfter: number; maxBytes: number }>(
    r,
  );
  assert.deepEqual(
    out.removed.map((e) => e.dir),
    [a, b, c],
  );
  assert.equal(out.maxBytes, 5120);
  assert.equal(out.bytesBefore, total);
  assert.equal(out.bytesAfter, totalBytes(await listCache(cache)));
  assert.ok(existsSync(y) && existsSync(z), "sources stay without --sources");
  const over = await cicada(["cache", "prune", "--root", cache, "--max-bytes", "5K", "--dry-run"]);
  assert.match(
    over.stdout,
    /still over 5\.00 KiB: what is left is in use or a source \(--sources lets those go\)/,
  );

  // With --sources, the older source goes first, and only as far as needed.
  const withSources = await pruneCache(cache, { maxBytes: 5120, sources: true });
  assert.deepEqual(
    withSources.map((e) => e.dir),
    [z],
  );
  assert.ok(existsSync(y));
  const lone = await cicada(["cache", "prune", "--root", cache, "--sources"]);
  assert.equal(lone.code, 2);
  assert.match(lone.stderr, /--sources only applies with --max-bytes/);
});

test("sizes: bytes or K, M, G, T (binary); anything else is E_USAGE", () => {
  assert.equal(sizeFlag("--max-bytes", "1000"), 1000);
  assert.equal(sizeFlag("--max-bytes", "5K"), 5120);
  assert.equal(sizeFlag("--max-bytes", "1.5MiB"), 1.5 * 2 ** 20);
  assert.equal(sizeFlag("--max-bytes", "20G"), 20 * 2 ** 30);
  assert.equal(sizeFlag("--max-bytes", "0"), 0);
  for (const bad of ["", "-1", "12X", "G", "1e9"]) {
    assert.throws(
      () => sizeFlag("--max-bytes", bad),
      (e: unknown) => isCicadaError(e, "E_USAGE"),
      bad,
    );
  }
});

test("an entry in use is never pruned: mapped by a loaded model, or written by a live process", async () => {
  const cache = join(root, "in-use");
  const source = await writeMlp(join(root, "mlp"), 3, 256);
  const bundleDir = join(root, "mlp.bundle");
  await importModel(source, bundleDir, { stages: 2 });
  const { entry: built } = await ensureOptimizedStages(await openBundle(bundleDir), cache, {
    forms: ["whole"],
  });
  const old = new Date(Date.now() - 30 * 86_400_000);

  // A model loaded in this process maps the entry's whole graph data.
  const runtime = await createRuntime({ cacheRoot: cache, intraOpNumThreads: 1 });
  try {
    const model = await loadModel(runtime, bundleDir, { strategy: "cicada" });
    await model.run(inputX(1, 256));
    await utimes(built.dir, old, old);
    const listed = (await listCache(cache)).find((e) => e.dir === built.dir)!;
    assert.deepEqual(listed.inUseBy, [process.pid], "the loaded model maps it");
    assert.deepEqual(await pruneCache(cache, { maxBytes: 0, unusedDays: 1 }), []);
    const shown = await cicada(["cache", "list", "--root", cache]);
    assert.match(shown.stdout, new RegExp(`PID ${process.pid}`));
    await model.dispose();
  } finally {
    await runtime.close();
  }
  assert.deepEqual((await listCache(cache)).find((e) => e.dir === built.dir)!.inUseBy, []);

  // A live process writing inside it (its staging, owner alive) keeps it too; once it is gone, it goes.
  const live = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
  const exited = new Promise((r) => live.on("exit", r));
  try {
    await writeFile(join(built.dir, `.verified.json.tmp-${live.pid}-0badf00d`), "{}");
    await utimes(built.dir, old, old);
    const kept = await pruneCache(cache, { maxBytes: 0 });
    assert.ok(existsSync(built.dir));
    assert.deepEqual(kept, [], "neither the entry nor the running write");
  } finally {
    live.kill("SIGKILL");
  }
  await exited;
  const removed = await pruneCache(cache, { maxBytes: 0 });
  assert.ok(removed.some((e) => e.dir === built.dir));
  assert.ok(!existsSync(built.dir));
});

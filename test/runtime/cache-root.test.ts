// The cache root on a real cache: entries of every kind record their origin, a removed bundle orphans what
// was derived from it, a MiniLoader entry of another format or content is superseded, and pruning removes
// exactly what it selects (nothing on a dry run).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { importModel } from "../../src/importer/import-model.js";
import { listCache, pruneCache } from "../../src/runtime/cache-root.js";
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

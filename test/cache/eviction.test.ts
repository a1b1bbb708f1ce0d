// MiniLoader's cache entries: an eviction removes the build it was asked to and never the rebuild that took
// its place, however late the failure that asked for it is noticed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openBundle } from "../../src/format/bundle.js";
import { importModel } from "../../src/importer/import-model.js";
import { evictEntry } from "../../src/cache/eviction.js";
import { miniLoaderDir } from "../../src/cache/miniloader-entry.js";
import { ensureOptimizedStages } from "../../src/runtime/miniloader/ensure.js";
import { writeMlp } from "../importer/tiny-models.js";

const root = await mkdtemp(join(tmpdir(), "cicada-miniloader-"));
test.after(() => rm(root, { recursive: true, force: true }));
const source = await writeMlp(join(root, "mlp"), 4, 64);
await importModel(source, join(root, "bundle"), { stages: 2 });
const bundle = await openBundle(join(root, "bundle"));

test("evictEntry removes that build only: a late eviction leaves the rebuild, and nothing is left aside", async () => {
  const cache = join(root, "cache");
  const first = (await ensureOptimizedStages(bundle, cache)).entry;
  await evictEntry(first);
  assert.ok(!existsSync(first.dir), "the build is gone");
  const rebuilt = await ensureOptimizedStages(bundle, cache);
  assert.ok(rebuilt.built, "the next use rebuilds it");
  assert.notEqual(rebuilt.entry.buildId, first.buildId);
  // The first build's handle again, as another stage's failure holds it; and a handle of a build this
  // process never saw, as another process holds it (moved aside, found to be the rebuild, put back).
  await evictEntry({ ...first });
  await evictEntry({ ...first, buildId: "another-process-build" });
  const again = await ensureOptimizedStages(bundle, cache);
  assert.equal(again.built, false, "the rebuild is still in place");
  assert.equal(again.entry.buildId, rebuilt.entry.buildId);
  await evictEntry(again.entry);
  assert.ok(!existsSync(again.entry.dir));
  assert.deepEqual(await readdir(miniLoaderDir(cache)), [], "no directory left aside");
});

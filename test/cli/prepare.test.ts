// `cicada prepare` end to end: a real process builds MiniLoader's cache for a bundle (verified, so the
// next cold start runs it on the calling thread), and refuses bad input with a code before building.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openBundle } from "../../src/format/bundle.js";
import { importModel } from "../../src/importer/import-model.js";
import { findOptimizedStages } from "../../src/runtime/miniloader/ensure.js";
import { isVerified } from "../../src/runtime/miniloader/verify.js";
import { cicada, json } from "../support/cli.js";
import { writeMlp } from "../importer/tiny-models.js";

const root = await mkdtemp(join(tmpdir(), "cicada-prepare-"));
test.after(() => rm(root, { recursive: true, force: true }));

test("cicada prepare builds and verifies the cache a cold start reads; bad input is refused first", async () => {
  const bundleDir = join(root, "mlp.bundle");
  await importModel(await writeMlp(root, 3, 32), bundleDir, { stages: 2 });
  const cache = join(root, "cache");
  const r = await cicada(["prepare", bundleDir, "--strategies", "cicada,pisel", "--json"], {
    CICADA_CACHE: cache,
  });
  assert.equal(r.code, 0, r.stderr);
  const out = json<{ prepared: { strategy: string; files: number; bytes: number }[] }>(r);
  assert.deepEqual(
    out.prepared.map((p) => p.strategy),
    ["cicada", "pisel"],
  );
  assert.ok(out.prepared.every((p) => p.files > 0 && p.bytes > 0));
  const entry = await findOptimizedStages(await openBundle(bundleDir), cache);
  assert.ok(entry?.whole && isVerified(entry), "MiniLoader's entry exists and is verified");

  const unknown = await cicada(["prepare", bundleDir, "--strategies", "turbo"], { CICADA_CACHE: cache });
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /E_USAGE.*turbo/);
  const notBundle = await cicada(["prepare", root], { CICADA_CACHE: cache });
  assert.equal(notBundle.code, 1);
  assert.match(notBundle.stderr, /E_BUNDLE_MANIFEST/);
});

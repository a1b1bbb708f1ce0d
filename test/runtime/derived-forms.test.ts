// The peers' derived forms: PISeL's stage files and ort-best's model are built on the build thread, carry
// the checksum of every file, and a corrupt one is removed and rebuilt. Before anything is written, the
// disk each needs is checked: a disk without room refuses with E_NO_SPACE naming the bytes needed and
// available, before a build thread starts, and leaves nothing behind.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { verifyForm } from "../../src/cache/forms.js";
import { isCicadaError } from "../../src/errors.js";
import { fileCrc32 } from "../../src/format/checksum.js";
import { openBundle } from "../../src/format/bundle.js";
import { importModel } from "../../src/importer/import-model.js";
import { ensureOrtBestModel, ensurePiselStages } from "../../src/runtime/derived-forms.js";
import { buildThreads } from "../../src/runtime/miniloader/build-thread.js";
import { ensureOptimizedStages } from "../../src/runtime/miniloader/ensure.js";
import { mountTmpfs } from "../format/tmpfs.js";
import { writeMlp } from "../importer/tiny-models.js";

const root = await mkdtemp(join(tmpdir(), "cicada-derived-forms-"));
test.after(() => rm(root, { recursive: true, force: true }));
// 512 KiB of weights in two stages.
const source = await writeMlp(join(root, "wide"), 2, 256);
await importModel(source, join(root, "wide.bundle"), { stages: 2 });
const bundle = await openBundle(join(root, "wide.bundle"));

test("PISeL's and ort-best's forms: built with each file's checksum; a corrupt one is removed and rebuilt", async () => {
  const cache = join(root, "cache");
  const pisel = await ensurePiselStages(bundle, cache);
  assert.deepEqual(
    pisel.map((f) => f.path.split("/").at(-1)),
    ["stage-000.onnx", "stage-001.onnx"],
  );
  const ortBest = await ensureOrtBestModel(bundle, cache);
  assert.deepEqual(
    ortBest.map((f) => f.path.split("/").at(-1)),
    ["model.onnx", "model.data"],
  );
  for (const f of [...pisel, ...ortBest]) assert.equal(await fileCrc32(f.path), f.checksum, f.path);
  // Each form holds the weights once: PISeL's files embed them, ort-best's data file holds them.
  const bytes = async (files: { path: string }[]) =>
    (await Promise.all(files.map((f) => readFile(f.path)))).reduce((n, b) => n + b.byteLength, 0);
  assert.ok((await bytes(pisel)) >= bundle.manifest.totalWeightBytes);
  assert.ok((await bytes(ortBest)) >= bundle.manifest.totalWeightBytes);

  const bad = pisel[1]!;
  const b = await readFile(bad.path);
  b[b.length - 5]! ^= 0xff;
  await writeFile(bad.path, b);
  await assert.rejects(verifyForm(pisel), (e: unknown) => isCicadaError(e, "E_BUNDLE_CHECKSUM"));
  assert.ok(!existsSync(dirname(bad.path)), "the corrupt form is gone");
  const rebuilt = await ensurePiselStages(bundle, cache);
  await verifyForm(rebuilt);
  assert.equal(rebuilt[1]!.checksum, bad.checksum, "the same bytes again");
});

test("on a disk without room, every cache build refuses with E_NO_SPACE before it starts", async (t) => {
  const fs = await mountTmpfs(256 << 10);
  if ("skip" in fs) return t.skip(fs.skip);
  try {
    const cache = join(fs.dir, "cache");
    const threads = buildThreads().started;
    const builds = {
      "PISeL's stage files": () => ensurePiselStages(bundle, cache),
      "ort-best's model": () => ensureOrtBestModel(bundle, cache),
      "MiniLoader's cache entry": () => ensureOptimizedStages(bundle, cache, { forms: ["whole"] }),
    };
    for (const [what, build] of Object.entries(builds)) {
      await assert.rejects(build(), (e: unknown) => {
        assert.ok(isCicadaError(e, "E_NO_SPACE"), String(e));
        assert.match(
          e.message,
          new RegExp(`^${what} .* needs [\\d,]+ bytes .* which has [\\d,]+ bytes .* free`),
        );
        return true;
      });
    }
    assert.equal(buildThreads().started, threads, "no build started");
    for (const kind of await readdir(cache)) assert.deepEqual(await readdir(join(cache, kind)), [], kind);
  } finally {
    await fs.unmount();
  }
});

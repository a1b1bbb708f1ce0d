// Opening a bundle trusts nothing it names: paths stay inside it and are regular files, stage graphs
// match their checksums and reference only their own weight range, the manifest is bounded, and a bundle
// of an older format is refused with what to do. No onnxruntime here: these checks come before it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, symlink, writeFile, cp, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isCicadaError, type ErrorCode } from "../../src/errors.js";
import { openBundle, readStageStructure } from "../../src/format/bundle.js";
import { sha256Of } from "../../src/format/checksum.js";
import { parseManifest, type Manifest } from "../../src/format/manifest.js";
import { decodeModel, encodeModel, setExternal } from "../../src/format/onnx-io.js";
import { importModel } from "../../src/importer/import-model.js";
import { writeMlp } from "../importer/tiny-models.js";

const root = await mkdtemp(join(tmpdir(), "cicada-bundle-"));
test.after(() => rm(root, { recursive: true, force: true }));
const source = await writeMlp(root, 4, 32);
const original = join(root, "mlp.bundle");
await importModel(source, original, { stages: 2 });
let copies = 0;

/** A copy of the bundle with its manifest changed by `edit` (and files changed by `prepare`). */
async function mutant(
  edit: (m: Manifest) => void,
  prepare?: (dir: string, m: Manifest) => Promise<void>,
): Promise<string> {
  const dir = join(root, `mutant-${copies++}`);
  await cp(original, dir, { recursive: true });
  const m = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as Manifest;
  await prepare?.(dir, m);
  edit(m);
  await writeFile(join(dir, "manifest.json"), JSON.stringify(m));
  return dir;
}

async function refuses(p: Promise<unknown>, code: ErrorCode, pattern?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isCicadaError(e, code), `expected ${code}, got ${String(e)}`);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

test("the imported bundle opens and its stage graphs verify", async () => {
  const b = await openBundle(original);
  for (const s of b.manifest.stages) {
    const bytes = await readStageStructure(b, s.index);
    assert.equal(sha256Of(bytes), s.fileChecksum);
  }
});

test("stage files that escape the bundle or are not files are refused", async () => {
  for (const file of ["../../../../etc/passwd", "/proc/self/environ", ".", "stages/../../x.onnx"]) {
    const dir = await mutant((m) => (m.stages[0]!.file = file));
    await refuses(openBundle(dir), "E_BUNDLE_MANIFEST", /stages\.0\.file/);
  }
  const link = await mutant(
    (m) => (m.stages[0]!.file = "stages/link.onnx"),
    async (dir) => symlink(join(original, "stages", "000.onnx"), join(dir, "stages", "link.onnx")),
  );
  await refuses(openBundle(link), "E_BUNDLE_PATH", /outside/);
  const dev = await mutant(
    (m) => (m.stages[0]!.file = "stages/zero.onnx"),
    async (dir) => symlink("/dev/zero", join(dir, "stages", "zero.onnx")),
  );
  await refuses(openBundle(dev), "E_BUNDLE_PATH");
  const weights = await mutant(
    () => {},
    async (dir) => {
      await unlink(join(dir, "weights.safetensors"));
      await symlink(join(original, "weights.safetensors"), join(dir, "weights.safetensors"));
    },
  );
  await refuses(openBundle(weights), "E_BUNDLE_PATH", /weights file/);
});

test("a stage graph that differs from its checksum is refused before onnxruntime sees it", async () => {
  const dir = await mutant(
    () => {},
    async (d) => {
      const path = join(d, "stages", "001.onnx");
      const bytes = await readFile(path);
      bytes.writeUInt8(bytes.readUInt8(bytes.length - 3) ^ 0x10, bytes.length - 3);
      await writeFile(path, bytes);
    },
  );
  const b = await openBundle(dir);
  await refuses(readStageStructure(b, 1), "E_BUNDLE_CHECKSUM", /structure graph of stage 1/);
});

test("a stage graph naming an external file other than its weight range is refused", async () => {
  // The crafted case: stage 1 declares no weights, and its graph names `secret.txt` (which onnxruntime
  // would resolve against the working directory); the manifest's checksum is made to match.
  const dir = await mutant(
    (m) => {
      m.stages[1]!.weights.length = 0;
      m.stages[1]!.tensors = [];
    },
    async (d, m) => {
      const path = join(d, "stages", "001.onnx");
      const model = decodeModel(await readFile(path));
      setExternal(model.graph!.initializer![0]!, { location: "secret.txt", offset: 0, length: 64 });
      const bytes = encodeModel(model);
      await writeFile(path, bytes);
      m.stages[1]!.fileBytes = bytes.byteLength;
      m.stages[1]!.fileChecksum = sha256Of(bytes);
    },
  );
  const b = await openBundle(dir);
  await refuses(readStageStructure(b, 1), "E_BUNDLE_PATH", /secret\.txt/);
});

test("a format 1 bundle is refused with what to do", async () => {
  const dir = await mutant((m) => ((m as { formatVersion: number }).formatVersion = 1));
  await refuses(openBundle(dir), "E_BUNDLE_VERSION", /import the model again/);
});

test("manifest bounds: a million stages, long strings, huge example shapes are refused at once", async () => {
  const m = JSON.parse(await readFile(join(original, "manifest.json"), "utf8")) as Manifest;
  const many = { ...m, stages: Array.from({ length: 1_000_000 }, () => m.stages[0]) };
  const t0 = performance.now();
  assert.throws(
    () => parseManifest(many, "m.json"),
    (e: unknown) => isCicadaError(e, "E_BUNDLE_LIMIT"),
  );
  assert.ok(performance.now() - t0 < 5000);
  const long = structuredClone(m);
  long.model.name = "x".repeat(100_000);
  assert.throws(() => parseManifest(long, "m.json"), /model\.name.*100000 characters/);
  const huge = structuredClone(m);
  huge.inputs[0]!.example.shape = [100_000, 100_000];
  assert.throws(
    () => parseManifest(huge, "m.json"),
    (e: unknown) => isCicadaError(e, "E_BUNDLE_LIMIT"),
  );
});

test("manifest consistency: an output no stage produces, or a stage input nothing produces", async () => {
  const m = JSON.parse(await readFile(join(original, "manifest.json"), "utf8")) as Manifest;
  const missing = structuredClone(m);
  missing.outputs[0]!.name = "not-there";
  assert.throws(() => parseManifest(missing, "m.json"), /outputs\.0.*not an output of any stage/);
  const truncated = structuredClone(m);
  truncated.stages.pop();
  assert.throws(() => parseManifest(truncated, "m.json"), /not an output of any stage/);
  const orphan = structuredClone(m);
  orphan.stages[1]!.inputs[0]!.name = "ghost";
  assert.throws(() => parseManifest(orphan, "m.json"), /stages\.1\.inputs\.0.*ghost/);
});

// Models written by PyTorch's exporter (not by our zoo) import, run stage by stage through the
// runtime's sequential strategy, and agree with eager and with PyTorch's own golden outputs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { importModel } from "../../src/importer/import-model.js";
import { similarity } from "../../src/metrics/similarity.js";
import { tensorsFromJson } from "../../src/runtime/model-inputs.js";
import { runEager, runSequential } from "../../src/runtime/reference-runner.js";

const FIXTURES = fileURLToPath(new URL("../fixtures/", import.meta.url));

for (const [name, stages] of [
  ["torch-cnn", 3],
  ["torch-transformer", 3],
] as const) {
  test(`${name}.onnx (PyTorch exporter) imports into ${stages} stages and matches eager and PyTorch`, async () => {
    const dir = await mkdtemp(join(tmpdir(), "cicada-torch-"));
    try {
      const source = join(FIXTURES, `${name}.onnx`);
      const { manifest } = await importModel(source, join(dir, "bundle"), { stages });
      assert.equal(manifest.stages.length, stages);
      const io = JSON.parse(await readFile(join(FIXTURES, `${name}.io.json`), "utf8")) as {
        inputs: unknown;
        outputs: unknown;
      };
      const feeds = tensorsFromJson(io.inputs, `${name}.io.json`);
      const golden = tensorsFromJson(io.outputs, `${name}.io.json`);
      const sequential = await runSequential(join(dir, "bundle"), feeds);
      const eager = await runEager(source, feeds);
      for (const [output, expected] of Object.entries(golden)) {
        const vsEager = similarity(sequential.outputs[output]!.data, eager.outputs[output]!.data);
        assert.ok(vsEager.cosine >= 0.99999, `${output} vs eager: ${vsEager.cosine}`);
        const vsTorch = similarity(sequential.outputs[output]!.data, expected.data);
        assert.ok(
          vsTorch.cosine >= 0.99999 && vsTorch.maxAbsDiff < 1e-4,
          `${output} vs PyTorch: ${JSON.stringify(vsTorch)}`,
        );
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}

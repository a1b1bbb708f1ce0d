// Merging consecutive stages of a bundle into one model: on the importer's hardest tiny model (replicated
// constants, a shared weight duplicated per stage, a graph input read by many stages, bool and int64
// tensors crossing stages, two graph outputs), every group of stages runs in onnxruntime and produces the
// same tensors as the original model.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isCicadaError } from "../../src/errors.js";
import { openBundle } from "../../src/format/bundle.js";
import { importModel } from "../../src/importer/import-model.js";
import { similarity } from "../../src/metrics/similarity.js";
import { createSession, releaseSession, runSession } from "../../src/runtime/ort-adapter.js";
import { runEager } from "../../src/runtime/reference-runner.js";
import { mergeStages } from "../../src/runtime/stage-merge.js";
import { inputX, residualModel, saveModel } from "../importer/tiny-models.js";

const root = await mkdtemp(join(tmpdir(), "cicada-merge-"));
test.after(() => rm(root, { recursive: true, force: true }));

test("every group of consecutive stages runs and matches the original model's tensors", async () => {
  const source = await saveModel(root, "residual.onnx", residualModel());
  await importModel(source, join(root, "bundle"), { stages: 5 });
  const bundle = await openBundle(join(root, "bundle"));
  const stages = bundle.manifest.stages;
  // Every tensor that crosses a stage boundary, from the original model.
  const probes = stages.flatMap((s) => s.outputs).filter((o) => !["mid", "y"].includes(o.name));
  const reference = await runEager(source, inputX(), {}, probes);
  const known = { ...inputX(), ...reference.outputs };
  for (let first = 0; first < stages.length; first++) {
    for (let last = first; last < stages.length; last++) {
      const merged = await mergeStages(bundle, first, last);
      const session = await createSession(merged.model, { externalData: merged.externalData });
      try {
        const feeds = Object.fromEntries(session.inputNames.map((n) => [n, known[n]!]));
        assert.ok(
          session.inputNames.every((n) => known[n]),
          `${first}..${last}: inputs ${session.inputNames.join(", ")}`,
        );
        const outputs = await runSession(session, feeds);
        const lastOutputs = stages[last]!.outputs.map((o) => o.name);
        for (const name of lastOutputs) assert.ok(outputs[name], `${first}..${last} outputs ${name}`);
        for (const [name, t] of Object.entries(outputs)) {
          const s = similarity(t.data, known[name]!.data);
          assert.ok(s.cosine >= 0.99999 && s.maxAbsDiff < 1e-5, `${first}..${last} ${name}: ${s.cosine}`);
        }
      } finally {
        await releaseSession(session);
      }
    }
  }
});

test("a group outside the bundle's stages is refused with E_USAGE", async () => {
  const bundle = await openBundle(join(root, "bundle"));
  for (const [first, last] of [
    [-1, 0],
    [2, 1],
    [0, bundle.manifest.stages.length],
  ] as const) {
    await assert.rejects(
      mergeStages(bundle, first, last),
      (e) => isCicadaError(e, "E_USAGE") && /has stages 0\.\./.test(e.message),
    );
  }
});

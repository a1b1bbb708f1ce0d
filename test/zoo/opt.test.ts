// OPT zoo models: HF's parameter counts, state_dict names and layouts on the full-size graphs (cheap:
// weights are only declared), and tiny-opt run in onnxruntime against an independent reference.
import { test } from "node:test";
import assert from "node:assert/strict";
import { optConfigs, optModels } from "../../src/zoo/opt.js";
import type { ZooModel } from "../../src/zoo/zoo-model.js";
import { checkTinyDecoder } from "./llm-test-kit.js";
import { optReference } from "./reference-llm.js";

function model(name: string): ZooModel {
  const m = optModels.find((x) => x.name === name);
  assert.ok(m, `zoo model ${name} exists`);
  return m;
}

test("full-size OPTs have Hugging Face's parameter counts (tied lm_head counted once)", () => {
  const expected = { "opt-1.3b": 1_315_758_080, "opt-2.7b": 2_651_596_800, "opt-6.7b": 6_658_473_984 };
  for (const [name, count] of Object.entries(expected)) {
    const m = model(name);
    assert.equal(m.publishedParameters, count);
    const g = m.build();
    assert.equal(g.parameterCount(), count, name);
    assert.equal(g.weightBytes(), 4 * count, name);
  }
});

test("opt-1.3b uses HF state_dict names and layouts, 2050 position rows, tied lm_head", () => {
  const g = model("opt-1.3b").build();
  const dims = new Map(g.weights.map((w) => [w.name, w.dims]));
  // Per layer: 4 projections and 2 fc with bias (12), 2 LayerNorms (4).
  assert.equal(g.weights.length, 2 + 24 * 16 + 2);
  const d = "model.decoder";
  assert.deepEqual(dims.get(`${d}.embed_tokens.weight`), [50_272, 2048]);
  assert.deepEqual(dims.get(`${d}.embed_positions.weight`), [2050, 2048]);
  assert.deepEqual(dims.get(`${d}.layers.0.self_attn.k_proj.weight`), [2048, 2048]);
  assert.deepEqual(dims.get(`${d}.layers.0.self_attn.k_proj.bias`), [2048]);
  assert.deepEqual(dims.get(`${d}.layers.0.self_attn.out_proj.weight`), [2048, 2048]);
  assert.deepEqual(dims.get(`${d}.layers.0.self_attn_layer_norm.bias`), [2048]);
  assert.deepEqual(dims.get(`${d}.layers.23.fc1.weight`), [8192, 2048]);
  assert.deepEqual(dims.get(`${d}.layers.23.fc2.weight`), [2048, 8192]);
  assert.deepEqual(dims.get(`${d}.layers.23.final_layer_norm.weight`), [2048]);
  assert.deepEqual(dims.get(`${d}.final_layer_norm.weight`), [2048]);
  assert.ok(!dims.has("lm_head.weight"), "tied: no separate lm_head");
  assert.ok(!dims.has(`${d}.layers.24.fc1.weight`), "24 layers");

  const consumers = g.nodes.filter((n) => n.input?.includes(`${d}.embed_tokens.weight`));
  assert.deepEqual(
    consumers.map((n) => n.opType),
    ["Gather", "Gemm"],
  );
  assert.equal(g.nodes.filter((n) => n.opType === "LayerNormalization").length, 2 * 24 + 1);
  assert.equal(g.nodes.filter((n) => n.opType === "Relu").length, 24);
  const outDims = g.outputs[0]?.type?.tensorType?.shape?.dim?.map((x) => x.dimParam ?? x.dimValue);
  assert.deepEqual(outDims, ["batch", "sequence", 50_272]);
  assert.deepEqual(model("opt-1.3b").exampleInputs, [
    { name: "input_ids", dtype: "int64", dims: [1, 10], range: [0, 50_272] },
  ]);
});

test("opt-2.7b and opt-6.7b have 32 layers of their hidden and ffn widths", () => {
  for (const [name, hidden, ffn] of [
    ["opt-2.7b", 2560, 10_240],
    ["opt-6.7b", 4096, 16_384],
  ] as const) {
    const dims = new Map(
      model(name)
        .build()
        .weights.map((w) => [w.name, w.dims]),
    );
    assert.deepEqual(dims.get("model.decoder.layers.31.fc1.weight"), [ffn, hidden], name);
    assert.ok(!dims.has("model.decoder.layers.32.fc1.weight"), name);
  }
});

test("tiny-opt matches the reference forward pass in onnxruntime, for two lengths, and is causal", async () => {
  const config = optConfigs["tiny-opt"]!;
  await checkTinyDecoder(model("tiny-opt"), config.vocabSize, (w, ids) => optReference(w, config, ids));
});

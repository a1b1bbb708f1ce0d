// LLaMA zoo models: HF's parameter counts, state_dict names and layouts on the full-size graphs (cheap:
// weights are only declared), and tiny-llama run in onnxruntime against an independent reference.
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildLlama, llamaConfigs, llamaModels } from "../../src/zoo/llama.js";
import { ropeInverseFrequencies } from "../../src/zoo/llama-blocks.js";
import type { ZooModel } from "../../src/zoo/zoo-model.js";
import { checkTinyDecoder } from "./llm-test-kit.js";
import { llamaReference } from "./reference-llm.js";

function model(name: string): ZooModel {
  const m = llamaModels.find((x) => x.name === name);
  assert.ok(m, `zoo model ${name} exists`);
  return m;
}

test("full-size LLaMAs have Hugging Face's parameter counts (tied embedding counted once)", () => {
  const expected = {
    "llama-3.2-1b": 1_235_814_400,
    "llama-3.2-3b": 3_212_749_824,
    "llama-3-8b": 8_030_261_248,
  };
  for (const [name, count] of Object.entries(expected)) {
    const m = model(name);
    assert.equal(m.publishedParameters, count);
    const g = m.build();
    assert.equal(g.parameterCount(), count, name);
    // No buffers among the generated weights: inv_freq is an inline constant.
    assert.equal(g.weightBytes(), 4 * count, name);
  }
});

test("llama-3.2-1b uses HF state_dict names and [out, in] layouts, and ties lm_head to the embedding", () => {
  const g = model("llama-3.2-1b").build();
  const dims = new Map(g.weights.map((w) => [w.name, w.dims]));
  assert.equal(g.weights.length, 1 + 16 * 9 + 1);
  assert.deepEqual(dims.get("model.embed_tokens.weight"), [128_256, 2048]);
  assert.deepEqual(dims.get("model.layers.0.input_layernorm.weight"), [2048]);
  assert.deepEqual(dims.get("model.layers.0.self_attn.q_proj.weight"), [2048, 2048]);
  assert.deepEqual(dims.get("model.layers.0.self_attn.k_proj.weight"), [512, 2048]);
  assert.deepEqual(dims.get("model.layers.0.self_attn.v_proj.weight"), [512, 2048]);
  assert.deepEqual(dims.get("model.layers.0.self_attn.o_proj.weight"), [2048, 2048]);
  assert.deepEqual(dims.get("model.layers.15.mlp.gate_proj.weight"), [8192, 2048]);
  assert.deepEqual(dims.get("model.layers.15.mlp.up_proj.weight"), [8192, 2048]);
  assert.deepEqual(dims.get("model.layers.15.mlp.down_proj.weight"), [2048, 8192]);
  assert.deepEqual(dims.get("model.layers.15.post_attention_layernorm.weight"), [2048]);
  assert.deepEqual(dims.get("model.norm.weight"), [2048]);
  assert.ok(!dims.has("lm_head.weight"), "tied: no separate lm_head");
  assert.ok(!dims.has("model.layers.16.input_layernorm.weight"), "16 layers");

  const consumers = g.nodes.filter((n) => n.input?.includes("model.embed_tokens.weight"));
  assert.deepEqual(
    consumers.map((n) => [n.opType, n.name]),
    [
      ["Gather", "model.embed_tokens"],
      ["Gemm", "lm_head"],
    ],
  );
  assert.ok(
    g.nodes
      .filter((n) => n.opType === "Gemm")
      .every((n) => n.attribute?.some((a) => a.name === "transB" && a.i === 1)),
    "every Linear reads its [out, in] weight with transB",
  );
  const weightNames = new Set(g.weights.map((w) => w.name));
  assert.ok(
    g.nodes.filter((n) => n.opType === "Transpose").every((n) => !weightNames.has(n.input![0]!)),
    "no weight is transposed at run time",
  );
  assert.equal(g.nodes.filter((n) => n.opType === "Trilu").length, 16, "a causal mask per layer");

  assert.equal(g.inputs[0]?.name, "input_ids");
  const inDims = g.inputs[0]?.type?.tensorType?.shape?.dim?.map((d) => d.dimParam);
  assert.deepEqual(inDims, ["batch", "sequence"]);
  const out = g.outputs[0]?.type?.tensorType?.shape?.dim;
  assert.deepEqual(
    out?.map((d) => d.dimParam ?? d.dimValue),
    ["batch", "sequence", 128_256],
  );
  assert.equal(g.nodes.at(-1)?.output?.[0], "logits");
  assert.deepEqual(model("llama-3.2-1b").exampleInputs, [
    { name: "input_ids", dtype: "int64", dims: [1, 128], range: [0, 128_256] },
  ]);
});

test("llama-3-8b has a separate lm_head, llama-3.2-3b has 28 layers of head_dim 128", () => {
  const big = model("llama-3-8b").build();
  const bigDims = new Map(big.weights.map((w) => [w.name, w.dims]));
  assert.deepEqual(bigDims.get("lm_head.weight"), [128_256, 4096]);
  assert.deepEqual(bigDims.get("model.layers.31.mlp.down_proj.weight"), [4096, 14_336]);
  const lmHead = big.nodes.find((n) => n.name === "lm_head");
  assert.equal(lmHead?.input?.[1], "lm_head.weight");

  const mid = new Map(
    model("llama-3.2-3b")
      .build()
      .weights.map((w) => [w.name, w.dims]),
  );
  assert.deepEqual(mid.get("model.layers.27.self_attn.q_proj.weight"), [3072, 3072]);
  assert.deepEqual(mid.get("model.layers.27.self_attn.k_proj.weight"), [1024, 3072]);
  assert.ok(!mid.has("model.layers.28.self_attn.q_proj.weight"));
});

test("inv_freq follows HF's llama3 rope scaling: high frequencies kept, low ones divided by the factor", () => {
  const plain = ropeInverseFrequencies(64, 500_000);
  const scaled = ropeInverseFrequencies(64, 500_000, llamaConfigs["llama-3.2-1b"]!.ropeScaling);
  assert.equal(plain.length, 32);
  assert.equal(plain[0], 1);
  assert.ok(Math.abs(plain[31]! - 500_000 ** (-62 / 64)) < 1e-15);
  assert.equal(scaled[0], plain[0], "wavelength 2π < 2048: unchanged");
  assert.ok(Math.abs(scaled[31]! - plain[31]! / 32) < 1e-18, "wavelength > 8192: divided by 32");
  // Wavelengths between 2048 and 8192 are blended: strictly between the two.
  const medium = plain.findIndex((f) => (2 * Math.PI) / f > 2048 && (2 * Math.PI) / f < 8192);
  assert.ok(medium > 0);
  assert.ok(scaled[medium]! < plain[medium]! && scaled[medium]! > plain[medium]! / 32);
  // Llama 3.0 has no scaling.
  assert.equal(llamaConfigs["llama-3-8b"]!.ropeScaling, undefined);
});

test("tiny-llama matches the reference forward pass in onnxruntime, for two lengths, and is causal", async () => {
  const config = llamaConfigs["tiny-llama"]!;
  assert.equal(buildLlama(config).weights.length, 1 + 2 * 9 + 1);
  await checkTinyDecoder(model("tiny-llama"), config.vocabSize, (w, ids) => llamaReference(w, config, ids));
});

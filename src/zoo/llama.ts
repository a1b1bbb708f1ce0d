// The LLaMA family of the zoo: Hugging Face's LlamaForCausalLM (Llama 3.x configs) rebuilt node by node
// in ONNX, one forward pass over a prompt without KV cache, with the HF state_dict names and shapes so
// that a bundle's weights read like the HF checkpoint. This file assembles the model (embedding, the
// decoder layers of llama-blocks.ts, final norm, lm_head tied or not) and lists the zoo's configurations;
// decoder-emitter.ts holds the pieces shared with OPT and the layout choices the importer sees.
import { DataType } from "../format/onnx-types.js";
import { DecoderEmitter, INITIALIZER_STD } from "./decoder-emitter.js";
import { GraphBuilder, uniformStd } from "./graph-builder.js";
import { llamaLayer, rmsNorm, ropeInverseFrequencies, type LlamaConfig } from "./llama-blocks.js";
import type { ZooModel } from "./zoo-model.js";

/** Builds the ONNX graph of a LLaMA configuration (weights declared, not generated). */
export function buildLlama(c: LlamaConfig): GraphBuilder {
  const b = new GraphBuilder(c.name);
  const ids = b.input("input_ids", DataType.INT64, ["batch", "sequence"]);
  const e = new DecoderEmitter(b, ids, c.perturbConstants ?? false);
  const embedding = b.weight(
    "model.embed_tokens.weight",
    [c.vocabSize, c.hiddenSize],
    uniformStd(INITIALIZER_STD),
  );
  let hidden = e.tokens(
    "model.embed_tokens.flatten",
    e.embed("model.embed_tokens", embedding, ids),
    c.hiddenSize,
  );
  // A non-persistent buffer in HF (not in the state_dict): a small inline constant, not a weight.
  const invFreq = b.float(
    "model.rotary_emb.inv_freq",
    ropeInverseFrequencies(c.headDim, c.ropeTheta, c.ropeScaling),
  );
  for (let i = 0; i < c.numLayers; i++) hidden = llamaLayer(e, c, i, hidden, invFreq);
  hidden = rmsNorm(e, "model.norm", hidden, c);
  const head = c.tieWordEmbeddings
    ? embedding
    : b.weight("lm_head.weight", [c.vocabSize, c.hiddenSize], uniformStd(INITIALIZER_STD));
  e.lmHead(hidden, head, c.vocabSize);
  return b;
}

/** Llama 3.2's rope: theta 500000 with "llama3" scaling (factor 32, 8192 original positions). */
const LLAMA_32_ROPE = {
  ropeTheta: 500_000,
  ropeScaling: { factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
} as const;

/** The LLaMA configurations of the zoo, as their HF config.json files state them. */
export const llamaConfigs: Record<string, LlamaConfig> = {
  "llama-3.2-1b": {
    name: "llama-3.2-1b",
    vocabSize: 128_256,
    hiddenSize: 2048,
    numLayers: 16,
    numHeads: 32,
    numKvHeads: 8,
    headDim: 64,
    intermediateSize: 8192,
    ...LLAMA_32_ROPE,
    rmsNormEps: 1e-5,
    tieWordEmbeddings: true,
  },
  "llama-3.2-3b": {
    name: "llama-3.2-3b",
    vocabSize: 128_256,
    hiddenSize: 3072,
    numLayers: 28,
    numHeads: 24,
    numKvHeads: 8,
    headDim: 128,
    intermediateSize: 8192,
    ...LLAMA_32_ROPE,
    rmsNormEps: 1e-5,
    tieWordEmbeddings: true,
  },
  "llama-3-8b": {
    name: "llama-3-8b",
    vocabSize: 128_256,
    hiddenSize: 4096,
    numLayers: 32,
    numHeads: 32,
    numKvHeads: 8,
    headDim: 128,
    intermediateSize: 14_336,
    ropeTheta: 500_000,
    rmsNormEps: 1e-5,
    tieWordEmbeddings: false,
  },
  // A short original context (64 positions, theta 10000) puts the 8 frequencies of head_dim 16 in all
  // three bands of the llama3 scaling with angles large at test lengths, so the tests see the scaling.
  "tiny-llama": {
    name: "tiny-llama",
    vocabSize: 256,
    hiddenSize: 64,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    intermediateSize: 128,
    ropeTheta: 10_000,
    ropeScaling: { factor: 4, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 },
    rmsNormEps: 1e-5,
    tieWordEmbeddings: true,
    perturbConstants: true,
  },
};

/** Prompt length of the example input (the paper's LLaMA workload: 1x128 token ids). */
const EXAMPLE_SEQUENCE = 128;

function llamaModel(c: LlamaConfig, description: string, publishedParameters?: number): ZooModel {
  const model: ZooModel = {
    name: c.name,
    family: "llama",
    description,
    build: () => buildLlama(c),
    exampleInputs: [
      { name: "input_ids", dtype: "int64", dims: [1, EXAMPLE_SEQUENCE], range: [0, c.vocabSize] },
    ],
  };
  if (publishedParameters !== undefined) model.publishedParameters = publishedParameters;
  return model;
}

/** Llama 3.2 1B/3B and Llama 3 8B as HF defines them, and a tiny configuration of the same code. */
export const llamaModels: ZooModel[] = [
  llamaModel(
    llamaConfigs["llama-3.2-1b"]!,
    "Llama 3.2 1B (HF LlamaForCausalLM, tied embeddings), input_ids 1x128 -> logits",
    1_235_814_400,
  ),
  llamaModel(
    llamaConfigs["llama-3.2-3b"]!,
    "Llama 3.2 3B (HF LlamaForCausalLM, tied embeddings), input_ids 1x128 -> logits",
    3_212_749_824,
  ),
  llamaModel(
    llamaConfigs["llama-3-8b"]!,
    "Llama 3 8B (HF LlamaForCausalLM, separate lm_head), input_ids 1x128 -> logits",
    8_030_261_248,
  ),
  llamaModel(
    llamaConfigs["tiny-llama"]!,
    "Tiny LLaMA for tests: 2 layers, hidden 64, GQA 4/2 heads, vocab 256, input_ids 1x128 -> logits",
  ),
];

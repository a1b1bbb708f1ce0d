// The OPT family of the zoo: Hugging Face's OPTForCausalLM (do_layer_norm_before = true, the 1.3B and
// larger layout) rebuilt node by node in ONNX, one forward pass over a prompt without KV cache, with the
// HF state_dict names and shapes. It shares its decoder pieces (Gemm-based Linear in HF layout, per-layer
// causal mask from input_ids, tied lm_head) with the LLaMA family: see DecoderEmitter in decoder-emitter.ts.
import { DataType } from "../format/onnx-types.js";
import { GraphBuilder, uniformStd } from "./graph-builder.js";
import { constantInit, DecoderEmitter, INITIALIZER_STD } from "./decoder-emitter.js";
import type { ZooModel } from "./zoo-model.js";

/**
 * OPTLearnedPositionalEmbedding's offset: the table has max_position_embeddings + 2 rows and position p
 * reads row p + 2 (a fairseq legacy).
 */
export const OPT_POSITION_OFFSET = 2;

/** nn.LayerNorm's epsilon in OPT. */
const LAYER_NORM_EPS = 1e-5;

/** The fields of an HF OPTConfig that shape the graph (word_embed_proj_dim = hidden_size, ReLU, biases). */
export interface OptConfig {
  name: string;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  ffnDim: number;
  maxPositionEmbeddings: number;
  /** Draw norm weights around 1 and biases around 0 (tiny test models; see constantInit). */
  perturbConstants?: boolean;
}

/** nn.LayerNorm over the last axis, as ONNX LayerNormalization with weight and bias. */
function layerNorm(e: DecoderEmitter, prefix: string, x: string, hidden: number): string {
  const weight = e.b.weight(`${prefix}.weight`, [hidden], constantInit(1, e.perturb));
  const bias = e.b.weight(`${prefix}.bias`, [hidden], constantInit(0, e.perturb));
  return e.b.node("LayerNormalization", [x, weight, bias], { axis: -1, epsilon: LAYER_NORM_EPS }, prefix);
}

/** One OPTDecoderLayer (pre-LayerNorm): MHA with q scaled by 1/sqrt(head_dim), then the fc1-ReLU-fc2 MLP. */
function optLayer(e: DecoderEmitter, c: OptConfig, index: number, hidden: string): string {
  const b = e.b;
  const p = `model.decoder.layers.${index}`;
  const attn = `${p}.self_attn`;
  const { hiddenSize: h, numHeads: nh } = c;
  const d = h / nh;
  const { lengthVec } = e.sequence(attn);
  const mask = e.causalMask(attn, lengthVec);

  const x = layerNorm(e, `${p}.self_attn_layer_norm`, hidden, h);
  const scaledQ = b.node(
    "Mul",
    [e.linear(`${attn}.q_proj`, x, h, h, true), e.scalar(1 / Math.sqrt(d))],
    {},
    `${attn}.q_scaled`,
  );
  const q = e.splitHeads(`${attn}.q`, scaledQ, lengthVec, nh, d);
  const k = e.splitHeads(`${attn}.k`, e.linear(`${attn}.k_proj`, x, h, h, true), lengthVec, nh, d);
  const v = e.splitHeads(`${attn}.v`, e.linear(`${attn}.v_proj`, x, h, h, true), lengthVec, nh, d);
  const context = e.attention(attn, q, k, v, mask);
  const out = e.linear(`${attn}.out_proj`, e.mergeHeads(attn, context, h), h, h, true);
  const afterAttn = b.node("Add", [hidden, out], {}, `${p}.attn_residual`);

  const y = layerNorm(e, `${p}.final_layer_norm`, afterAttn, h);
  const fc1 = b.node("Relu", [e.linear(`${p}.fc1`, y, h, c.ffnDim, true)], {}, `${p}.activation_fn`);
  const fc2 = e.linear(`${p}.fc2`, fc1, c.ffnDim, h, true);
  return b.node("Add", [afterAttn, fc2], {}, `${p}.mlp_residual`);
}

/** Builds the ONNX graph of an OPT configuration (weights declared, not generated). */
export function buildOpt(c: OptConfig): GraphBuilder {
  const b = new GraphBuilder(c.name);
  const ids = b.input("input_ids", DataType.INT64, ["batch", "sequence"]);
  const e = new DecoderEmitter(b, ids, c.perturbConstants ?? false);
  const h = c.hiddenSize;
  const embedding = b.weight(
    "model.decoder.embed_tokens.weight",
    [c.vocabSize, h],
    uniformStd(INITIALIZER_STD),
  );
  const positionTable = b.weight(
    "model.decoder.embed_positions.weight",
    [c.maxPositionEmbeddings + OPT_POSITION_OFFSET, h],
    uniformStd(INITIALIZER_STD),
  );
  const tokens = e.embed("model.decoder.embed_tokens", embedding, ids);
  // HF derives positions from the attention mask (cumsum - 1); without padding that is 0..seq-1.
  const pos = "model.decoder.embed_positions";
  const { length } = e.sequence(pos);
  const rows = b.node(
    "Add",
    [e.positions(pos, length), e.ints([OPT_POSITION_OFFSET], true)],
    {},
    `${pos}.offset`,
  );
  const positions = e.embed(pos, positionTable, rows);
  const summed = b.node("Add", [tokens, positions], {}, "model.decoder.inputs_plus_positions");
  let hidden = e.tokens("model.decoder.flatten", summed, h);
  for (let i = 0; i < c.numLayers; i++) hidden = optLayer(e, c, i, hidden);
  hidden = layerNorm(e, "model.decoder.final_layer_norm", hidden, h);
  e.lmHead(hidden, embedding, c.vocabSize);
  return b;
}

/** The OPT configurations of the zoo, as their HF config.json files state them. */
export const optConfigs: Record<string, OptConfig> = {
  "opt-1.3b": {
    name: "opt-1.3b",
    vocabSize: 50_272,
    hiddenSize: 2048,
    numLayers: 24,
    numHeads: 32,
    ffnDim: 8192,
    maxPositionEmbeddings: 2048,
  },
  "opt-2.7b": {
    name: "opt-2.7b",
    vocabSize: 50_272,
    hiddenSize: 2560,
    numLayers: 32,
    numHeads: 32,
    ffnDim: 10_240,
    maxPositionEmbeddings: 2048,
  },
  "opt-6.7b": {
    name: "opt-6.7b",
    vocabSize: 50_272,
    hiddenSize: 4096,
    numLayers: 32,
    numHeads: 32,
    ffnDim: 16_384,
    maxPositionEmbeddings: 2048,
  },
  "tiny-opt": {
    name: "tiny-opt",
    vocabSize: 256,
    hiddenSize: 64,
    numLayers: 2,
    numHeads: 4,
    ffnDim: 128,
    maxPositionEmbeddings: 64,
    perturbConstants: true,
  },
};

/** Prompt length of the example input (the paper's OPT workload: 1x10 token ids). */
const EXAMPLE_SEQUENCE = 10;

function optModel(c: OptConfig, description: string, publishedParameters?: number): ZooModel {
  const model: ZooModel = {
    name: c.name,
    family: "opt",
    description,
    build: () => buildOpt(c),
    exampleInputs: [
      { name: "input_ids", dtype: "int64", dims: [1, EXAMPLE_SEQUENCE], range: [0, c.vocabSize] },
    ],
  };
  if (publishedParameters !== undefined) model.publishedParameters = publishedParameters;
  return model;
}

/** OPT-1.3B/2.7B/6.7B as HF defines them (lm_head tied to embed_tokens), and a tiny configuration. */
export const optModels: ZooModel[] = [
  optModel(
    optConfigs["opt-1.3b"]!,
    "OPT-1.3B (HF OPTForCausalLM, tied lm_head), input_ids 1x10 -> logits",
    1_315_758_080,
  ),
  optModel(
    optConfigs["opt-2.7b"]!,
    "OPT-2.7B (HF OPTForCausalLM, tied lm_head), input_ids 1x10 -> logits",
    2_651_596_800,
  ),
  optModel(
    optConfigs["opt-6.7b"]!,
    "OPT-6.7B (HF OPTForCausalLM, tied lm_head), input_ids 1x10 -> logits",
    6_658_473_984,
  ),
  optModel(
    optConfigs["tiny-opt"]!,
    "Tiny OPT for tests: 2 layers, hidden 64, 4 heads, vocab 256, 64 positions, input_ids 1x10 -> logits",
  ),
];

// The LLaMA family of the zoo: Hugging Face's LlamaForCausalLM (Llama 3.x configs) rebuilt node by node
// in ONNX, one forward pass over a prompt without KV cache, with the HF state_dict names and shapes so
// that a bundle's weights read like the HF checkpoint. It also holds DecoderEmitter, the pieces every
// decoder-only transformer of the zoo shares (Linear, heads, causal attention, tied lm_head); opt.ts
// uses it too.
//
// Layout choices, which the importer and the runtime see:
// - Every Linear keeps HF's weight layout [out, in] and runs as Gemm(transB=1), so no Transpose of a
//   big weight exists at run time; the hidden state therefore travels as 2-D [batch·sequence, hidden].
// - Each layer recomputes its own sequence helpers (positions, RoPE cos/sin, causal mask) from the
//   graph input `input_ids`, so a layer depends only on the previous hidden state, the graph input,
//   small constants and its own weights: a cut between layers crosses one activation. onnxruntime's
//   common-subexpression elimination merges the copies when the whole graph runs as one session.
// - With tied embeddings, the one initializer `model.embed_tokens.weight` feeds both the Gather and the
//   lm_head Gemm: a shared weight, on purpose.
import { DataType } from "../format/onnx-types.js";
import { GraphBuilder, uniformStd, type WeightInit } from "./graph-builder.js";
import type { ZooModel } from "./zoo-model.js";

/** HF's initializer_range: the std of every linear and embedding weight. */
export const INITIALIZER_STD = 0.02;

/** torch.finfo(torch.float32).min: HF's additive value for masked attention scores. */
const MASK_VALUE = -3.4028234663852886e38;

/**
 * How constant-initialised tensors (norm weights 1, norm and linear biases 0) are drawn. Full-size
 * models use HF's exact constants; tiny ones draw around them so that a test comparing logits with a
 * reference implementation notices a norm or bias wired to the wrong place.
 */
export function constantInit(value: number, perturb: boolean): WeightInit {
  return perturb ? { kind: "uniform", low: value - 0.1, high: value + 0.1 } : { kind: "constant", value };
}

/** Emits the building blocks of a decoder-only transformer into a GraphBuilder. */
export class DecoderEmitter {
  private readonly constants = new Map<string, string>();

  constructor(
    readonly b: GraphBuilder,
    /** The graph input `input_ids` [batch, sequence] int64, source of every sequence-length helper. */
    readonly inputIds: string,
    /** Whether constant-initialised tensors are perturbed (see {@link constantInit}). */
    readonly perturb: boolean,
  ) {}

  /** An int64 constant (a scalar when `scalar`), created once and shared. */
  ints(values: number[], scalar = false): string {
    const key = `i:${scalar}:${values.join(",")}`;
    let name = this.constants.get(key);
    if (!name) {
      const label = values.map((v) => (v < 0 ? `m${-v}` : `${v}`)).join("_");
      name = this.b.int64(`const_i64_${label}`, values, scalar ? [] : [values.length]);
      this.constants.set(key, name);
    }
    return name;
  }

  /** A float32 scalar constant, created once and shared. */
  scalar(value: number): string {
    const key = `f:${value}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.b.float(`const_f32_${this.constants.size}`, [value], []);
      this.constants.set(key, name);
    }
    return name;
  }

  /**
   * torch.nn.Linear on a 2-D input [tokens, inFeatures]: the weight is stored [out, in] as HF stores
   * it and consumed by Gemm with transB=1, the bias (if any) is Gemm's C.
   */
  linear(prefix: string, x: string, inFeatures: number, outFeatures: number, bias: boolean): string {
    const inputs = [
      x,
      this.b.weight(`${prefix}.weight`, [outFeatures, inFeatures], uniformStd(INITIALIZER_STD)),
    ];
    if (bias) inputs.push(this.b.weight(`${prefix}.bias`, [outFeatures], constantInit(0, this.perturb)));
    return this.b.node("Gemm", inputs, { transB: 1 }, prefix);
  }

  /** Embedding lookup: Gather rows of `weight` [vocab, hidden] by `ids`; keeps the ids' shape. */
  embed(name: string, weight: string, ids: string): string {
    return this.b.node("Gather", [weight, ids], { axis: 0 }, name);
  }

  /** [batch, sequence, hidden] -> [batch·sequence, hidden], the layout the Gemm-based layers use. */
  tokens(name: string, x: string, hidden: number): string {
    return this.b.node("Reshape", [x, this.ints([-1, hidden])], {}, name);
  }

  /** The sequence length of `input_ids`, as a scalar (for Range) and as a 1-element vector (for shapes). */
  sequence(prefix: string): { length: string; lengthVec: string } {
    const lengthVec = this.b.node("Shape", [this.inputIds], { start: 1, end: 2 }, `${prefix}.seq_len`);
    const length = this.b.node("Squeeze", [lengthVec, this.ints([0])], {}, `${prefix}.seq_len_scalar`);
    return { length, lengthVec };
  }

  /** Positions 0..length-1 as int64 [sequence]. */
  positions(prefix: string, length: string): string {
    return this.b.node(
      "Range",
      [this.ints([0], true), length, this.ints([1], true)],
      {},
      `${prefix}.positions`,
    );
  }

  /**
   * The additive causal mask [sequence, sequence]: 0 where key position <= query position, float32 min
   * above the diagonal (Trilu keeps the strict upper triangle of a filled matrix), as HF builds it.
   */
  causalMask(prefix: string, lengthVec: string): string {
    const b = this.b;
    const square = b.node("Concat", [lengthVec, lengthVec], { axis: 0 }, `${prefix}.mask_shape`);
    const fill = {
      dims: [1],
      dataType: DataType.FLOAT,
      rawData: new Uint8Array(new Float32Array([MASK_VALUE]).buffer),
    };
    const full = b.node("ConstantOfShape", [square], { value: fill }, `${prefix}.mask_fill`);
    return b.node("Trilu", [full, this.ints([1], true)], { upper: 1 }, `${prefix}.causal_mask`);
  }

  /** [batch·sequence, heads·headDim] -> [batch, heads, sequence, headDim]. */
  splitHeads(prefix: string, x: string, lengthVec: string, heads: number, headDim: number): string {
    const b = this.b;
    const shape = b.node(
      "Concat",
      [this.ints([-1]), lengthVec, this.ints([heads, headDim])],
      { axis: 0 },
      `${prefix}.heads_shape`,
    );
    const split = b.node("Reshape", [x, shape], {}, `${prefix}.split_heads`);
    return b.node("Transpose", [split], { perm: [0, 2, 1, 3] }, `${prefix}.heads_first`);
  }

  /** [batch, heads, sequence, headDim] -> [batch·sequence, heads·headDim]. */
  mergeHeads(prefix: string, x: string, width: number): string {
    const t = this.b.node("Transpose", [x], { perm: [0, 2, 1, 3] }, `${prefix}.tokens_first`);
    return this.b.node("Reshape", [t, this.ints([-1, width])], {}, `${prefix}.merge_heads`);
  }

  /**
   * Scaled dot-product attention with an additive mask: softmax(q·kᵀ·scale + mask)·v on
   * [batch, heads, sequence, headDim] tensors (`scale` omitted when q is scaled already).
   */
  attention(prefix: string, q: string, k: string, v: string, mask: string, scale?: number): string {
    const b = this.b;
    const kt = b.node("Transpose", [k], { perm: [0, 1, 3, 2] }, `${prefix}.k_transposed`);
    let scores = b.node("MatMul", [q, kt], {}, `${prefix}.scores`);
    if (scale !== undefined)
      scores = b.node("Mul", [scores, this.scalar(scale)], {}, `${prefix}.scaled_scores`);
    const masked = b.node("Add", [scores, mask], {}, `${prefix}.masked_scores`);
    const probs = b.node("Softmax", [masked], { axis: -1 }, `${prefix}.probs`);
    return b.node("MatMul", [probs, v], {}, `${prefix}.context`);
  }

  /**
   * lm_head without bias on [batch·sequence, hidden] with `weight` [vocab, hidden] (HF layout, Gemm
   * transB=1; the embedding matrix itself when tied), reshaped to the graph output `logits`
   * [batch, sequence, vocab].
   */
  lmHead(x: string, weight: string, vocab: number): void {
    const b = this.b;
    const flat = b.node("Gemm", [x, weight], { transB: 1 }, "lm_head");
    const idsShape = b.node("Shape", [this.inputIds], {}, "lm_head.ids_shape");
    const shape = b.node("Concat", [idsShape, this.ints([vocab])], { axis: 0 }, "lm_head.logits_shape");
    b.node("Reshape", [flat, shape], {}, "lm_head.unflatten");
    b.renameLastOutput("logits");
    b.output("logits", DataType.FLOAT, ["batch", "sequence", vocab]);
  }
}

/** Llama 3.1+/3.2 "llama3" RoPE scaling (HF rope_scaling with rope_type "llama3"). */
export interface Llama3RopeScaling {
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/** The fields of an HF LlamaConfig that shape the graph. */
export interface LlamaConfig {
  name: string;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  ropeTheta: number;
  /** Absent for Llama 3.0 (rope_scaling null). */
  ropeScaling?: Llama3RopeScaling;
  rmsNormEps: number;
  tieWordEmbeddings: boolean;
  /** Draw norm weights around 1 instead of exactly 1 (tiny test models; see {@link constantInit}). */
  perturbConstants?: boolean;
}

/**
 * inv_freq of HF's LlamaRotaryEmbedding: 1 / theta^(2i/headDim), then the "llama3" scaling when
 * configured (long wavelengths divided by `factor`, a smooth blend between the two thresholds).
 */
export function ropeInverseFrequencies(
  headDim: number,
  theta: number,
  scaling?: Llama3RopeScaling,
): number[] {
  const out: number[] = [];
  for (let i = 0; i < headDim; i += 2) {
    const base = 1 / theta ** (i / headDim);
    if (!scaling) {
      out.push(base);
      continue;
    }
    const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: context } = scaling;
    const wavelength = (2 * Math.PI) / base;
    if (wavelength < context / highFreqFactor) out.push(base);
    else if (wavelength > context / lowFreqFactor) out.push(base / factor);
    else {
      const smooth = (context / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
      out.push(((1 - smooth) * base) / factor + smooth * base);
    }
  }
  return out;
}

/** LlamaRMSNorm: x / sqrt(mean(x²) + eps) · weight, over the last axis, from primitive ops. */
function rmsNorm(e: DecoderEmitter, prefix: string, x: string, c: LlamaConfig): string {
  const b = e.b;
  const weight = b.weight(`${prefix}.weight`, [c.hiddenSize], constantInit(1, e.perturb));
  const square = b.node("Pow", [x, e.scalar(2)], {}, `${prefix}.square`);
  const mean = b.node("ReduceMean", [square], { axes: [-1], keepdims: 1 }, `${prefix}.mean`);
  const rms = b.node(
    "Sqrt",
    [b.node("Add", [mean, e.scalar(c.rmsNormEps)], {}, `${prefix}.add_eps`)],
    {},
    `${prefix}.rms`,
  );
  const normed = b.node("Div", [x, rms], {}, `${prefix}.normalize`);
  return b.node("Mul", [normed, weight], {}, prefix);
}

/** cos and sin [sequence, headDim] of positions 0..seq-1 (HF: emb = cat(freqs, freqs)). */
function rotaryTables(
  e: DecoderEmitter,
  prefix: string,
  length: string,
  invFreq: string,
): { cos: string; sin: string } {
  const b = e.b;
  const positions = b.node(
    "Cast",
    [e.positions(prefix, length)],
    { to: DataType.FLOAT },
    `${prefix}.positions_f32`,
  );
  const column = b.node("Unsqueeze", [positions, e.ints([1])], {}, `${prefix}.positions_column`);
  const freqs = b.node("Mul", [column, invFreq], {}, `${prefix}.freqs`);
  const emb = b.node("Concat", [freqs, freqs], { axis: -1 }, `${prefix}.emb`);
  return {
    cos: b.node("Cos", [emb], {}, `${prefix}.cos`),
    sin: b.node("Sin", [emb], {}, `${prefix}.sin`),
  };
}

/** apply_rotary_pos_emb with HF's rotate_half: x·cos + cat(-x2, x1)·sin on [batch, heads, seq, headDim]. */
function applyRope(e: DecoderEmitter, prefix: string, x: string, cos: string, sin: string): string {
  const b = e.b;
  const [x1, x2] = b.nodeN("Split", [x], 2, { axis: -1 }, `${prefix}.halves`) as [string, string];
  const rotated = b.node(
    "Concat",
    [b.node("Neg", [x2], {}, `${prefix}.neg_x2`), x1],
    { axis: -1 },
    `${prefix}.rotate_half`,
  );
  const a = b.node("Mul", [x, cos], {}, `${prefix}.x_cos`);
  const r = b.node("Mul", [rotated, sin], {}, `${prefix}.rotated_sin`);
  return b.node("Add", [a, r], {}, `${prefix}.rope`);
}

/** HF repeat_kv: [batch, kvHeads, seq, d] -> [batch, kvHeads·rep, seq, d], each KV head repeated in place. */
function repeatKv(e: DecoderEmitter, prefix: string, x: string, c: LlamaConfig): string {
  const rep = c.numHeads / c.numKvHeads;
  if (rep === 1) return x;
  const b = e.b;
  const five = b.node("Unsqueeze", [x, e.ints([2])], {}, `${prefix}.unsqueeze`);
  const expanded = b.node("Expand", [five, e.ints([1, 1, rep, 1, 1])], {}, `${prefix}.expand`);
  return b.node("Reshape", [expanded, e.ints([0, c.numHeads, -1, c.headDim])], {}, `${prefix}.repeat_kv`);
}

/** One LlamaDecoderLayer: pre-norm GQA self-attention with RoPE, then pre-norm SwiGLU MLP. */
function llamaLayer(
  e: DecoderEmitter,
  c: LlamaConfig,
  index: number,
  hidden: string,
  invFreq: string,
): string {
  const b = e.b;
  const p = `model.layers.${index}`;
  const attn = `${p}.self_attn`;
  const { hiddenSize: h, numHeads: nh, numKvHeads: nkv, headDim: d } = c;
  const { length, lengthVec } = e.sequence(attn);
  const mask = e.causalMask(attn, lengthVec);
  const { cos, sin } = rotaryTables(e, `${attn}.rotary_emb`, length, invFreq);

  const x = rmsNorm(e, `${p}.input_layernorm`, hidden, c);
  const q = e.splitHeads(`${attn}.q`, e.linear(`${attn}.q_proj`, x, h, nh * d, false), lengthVec, nh, d);
  const k = e.splitHeads(`${attn}.k`, e.linear(`${attn}.k_proj`, x, h, nkv * d, false), lengthVec, nkv, d);
  const v = e.splitHeads(`${attn}.v`, e.linear(`${attn}.v_proj`, x, h, nkv * d, false), lengthVec, nkv, d);
  const qr = applyRope(e, `${attn}.q`, q, cos, sin);
  const kr = repeatKv(e, `${attn}.k`, applyRope(e, `${attn}.k`, k, cos, sin), c);
  const vr = repeatKv(e, `${attn}.v`, v, c);
  const context = e.attention(attn, qr, kr, vr, mask, 1 / Math.sqrt(d));
  const o = e.linear(`${attn}.o_proj`, e.mergeHeads(attn, context, nh * d), nh * d, h, false);
  const afterAttn = b.node("Add", [hidden, o], {}, `${p}.attn_residual`);

  const mlp = `${p}.mlp`;
  const y = rmsNorm(e, `${p}.post_attention_layernorm`, afterAttn, c);
  const gate = e.linear(`${mlp}.gate_proj`, y, h, c.intermediateSize, false);
  const up = e.linear(`${mlp}.up_proj`, y, h, c.intermediateSize, false);
  const silu = b.node("Mul", [gate, b.node("Sigmoid", [gate], {}, `${mlp}.sigmoid`)], {}, `${mlp}.silu`);
  const product = b.node("Mul", [silu, up], {}, `${mlp}.gated`);
  const down = e.linear(`${mlp}.down_proj`, product, c.intermediateSize, h, false);
  return b.node("Add", [afterAttn, down], {}, `${p}.mlp_residual`);
}

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

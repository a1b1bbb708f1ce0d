// The transformer blocks of the LLaMA family (Hugging Face's LlamaDecoderLayer and its parts): RMSNorm,
// rotary position embeddings with Llama 3's frequency scaling, grouped-query attention's KV repeat and
// the SwiGLU MLP, built from primitive ONNX ops with the HF state_dict names; and the config fields they
// read. llama.ts assembles them into the model.
import { DataType } from "../format/onnx-types.js";
import { constantInit, type DecoderEmitter } from "./decoder-emitter.js";

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
export function rmsNorm(e: DecoderEmitter, prefix: string, x: string, c: LlamaConfig): string {
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

/**
 * One LlamaDecoderLayer (`model.layers.<index>`): pre-norm GQA self-attention with RoPE, then pre-norm
 * SwiGLU MLP, each with its residual; `invFreq` is the graph's rotary inverse-frequency constant.
 */
export function llamaLayer(
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

// An independent plain-TypeScript forward pass of the zoo's LLaMA and OPT decoders, written from the
// Hugging Face modelling code (not from the ONNX graph): it reads each weight by its state_dict name from
// model.onnx.data at the offset model.onnx records, and computes the same math with loops in float64.
// The zoo tests compare onnxruntime's logits with these, which checks names, layouts, RoPE, GQA, masks
// and norms all at once.
import { join } from "node:path";
import { externalLocation, isExternal, readOnnxFile, readRange } from "../../src/format/onnx-io.js";
import { DataType } from "../../src/format/onnx-types.js";
import type { LlamaConfig } from "../../src/zoo/llama-blocks.js";
import type { OptConfig } from "../../src/zoo/opt.js";

/** A float32 weight read from disk. */
export interface RefWeight {
  dims: number[];
  data: Float32Array;
}

/** Reads every external float32 initializer of `modelPath` by name. */
export async function loadWeights(modelPath: string): Promise<Map<string, RefWeight>> {
  const file = await readOnnxFile(modelPath);
  const out = new Map<string, RefWeight>();
  for (const t of file.model.graph?.initializer ?? []) {
    if (!isExternal(t) || t.dataType !== DataType.FLOAT) continue;
    const place = externalLocation(t, modelPath);
    const bytes = await readRange(join(file.dir, place.location), place.offset, place.length, t.name!);
    // Copy: the read buffer may sit at an offset that is not a multiple of 4.
    const data = new Float32Array(bytes.byteLength / 4);
    new Uint8Array(data.buffer).set(bytes);
    out.set(t.name!, { dims: (t.dims ?? []).map(Number), data });
  }
  return out;
}

function get(weights: Map<string, RefWeight>, name: string, dims: number[]): Float32Array {
  const w = weights.get(name);
  if (!w) throw new Error(`reference: weight ${name} is missing`);
  if (w.dims.join(",") !== dims.join(",")) {
    throw new Error(
      `reference: weight ${name} has dims [${w.dims.join(", ")}], expected [${dims.join(", ")}]`,
    );
  }
  return w.data;
}

/** Rows of activations: one Float64Array per token. */
type Rows = Float64Array[];

/** torch.nn.Linear: y = x·Wᵀ + b with W [out, in]. */
function linear(x: Rows, w: Float32Array, out: number, bias?: Float32Array): Rows {
  const inF = x[0]!.length;
  return x.map((row) => {
    const y = new Float64Array(out);
    for (let o = 0; o < out; o++) {
      let s = bias ? bias[o]! : 0;
      for (let i = 0; i < inF; i++) s += w[o * inF + i]! * row[i]!;
      y[o] = s;
    }
    return y;
  });
}

function addInPlace(a: Rows, b: Rows): void {
  a.forEach((row, t) => row.forEach((v, i) => (row[i] = v + b[t]![i]!)));
}

/**
 * Causal multi-head attention on per-token rows: q [S, heads·d], k and v [S, kvHeads·d]; query head h
 * reads KV head floor(h / (heads / kvHeads)); scores scaled by `scale`; token s sees tokens 0..s only.
 */
function causalAttention(
  q: Rows,
  k: Rows,
  v: Rows,
  heads: number,
  kvHeads: number,
  d: number,
  scale: number,
): Rows {
  const group = heads / kvHeads;
  return q.map((qRow, s) => {
    const out = new Float64Array(heads * d);
    for (let h = 0; h < heads; h++) {
      const kv = Math.floor(h / group);
      const scores = new Float64Array(s + 1);
      let max = -Infinity;
      for (let t = 0; t <= s; t++) {
        let dot = 0;
        for (let i = 0; i < d; i++) dot += qRow[h * d + i]! * k[t]![kv * d + i]!;
        scores[t] = dot * scale;
        max = Math.max(max, scores[t]!);
      }
      let sum = 0;
      for (let t = 0; t <= s; t++) sum += scores[t] = Math.exp(scores[t]! - max);
      for (let t = 0; t <= s; t++) {
        const p = scores[t]! / sum;
        for (let i = 0; i < d; i++) out[h * d + i]! += p * v[t]![kv * d + i]!;
      }
    }
    return out;
  });
}

function rmsNorm(x: Rows, w: Float32Array, eps: number): Rows {
  return x.map((row) => {
    let ms = 0;
    for (const v of row) ms += v * v;
    const inv = 1 / Math.sqrt(ms / row.length + eps);
    return row.map((v, i) => v * inv * w[i]!);
  });
}

function layerNorm(x: Rows, w: Float32Array, b: Float32Array, eps: number): Rows {
  return x.map((row) => {
    const mean = row.reduce((a, v) => a + v, 0) / row.length;
    const variance = row.reduce((a, v) => a + (v - mean) ** 2, 0) / row.length;
    const inv = 1 / Math.sqrt(variance + eps);
    return row.map((v, i) => (v - mean) * inv * w[i]! + b[i]!);
  });
}

/** HF's rope init for rope_type default / "llama3" (modeling_rope_utils._compute_llama3_parameters). */
function inverseFrequencies(c: LlamaConfig): number[] {
  const freqs: number[] = [];
  for (let i = 0; i < c.headDim / 2; i++) {
    const f = Math.pow(c.ropeTheta, (-2 * i) / c.headDim);
    const s = c.ropeScaling;
    if (!s) {
      freqs.push(f);
      continue;
    }
    const wavelen = (2 * Math.PI) / f;
    const lowFreqWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const highFreqWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    const scaled = wavelen > lowFreqWavelen ? f / s.factor : f;
    const smooth =
      (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    const medium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
    freqs.push(medium ? ((1 - smooth) * scaled) / s.factor + smooth * scaled : scaled);
  }
  return freqs;
}

/** Rotates each head's vector of token `pos` in place, HF rotate_half convention. */
function rope(row: Float64Array, heads: number, d: number, pos: number, invFreq: number[]): void {
  const half = d / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      // torch computes the angle in float32; the product is the only rounding step.
      const angle = Math.fround(pos * Math.fround(invFreq[i]!));
      const cos = Math.cos(angle);
      const sin = Math.sin(angle);
      const a = row[h * d + i]!;
      const b = row[h * d + half + i]!;
      row[h * d + i] = a * cos - b * sin;
      row[h * d + half + i] = b * cos + a * sin;
    }
  }
}

function logits(x: Rows, head: Float32Array, vocab: number): Float64Array {
  const rows = linear(x, head, vocab);
  const out = new Float64Array(rows.length * vocab);
  rows.forEach((r, t) => out.set(r, t * vocab));
  return out;
}

/** LlamaForCausalLM logits [sequence·vocab] for one sequence of token ids. */
export function llamaReference(w: Map<string, RefWeight>, c: LlamaConfig, ids: number[]): Float64Array {
  const {
    hiddenSize: h,
    numHeads: nh,
    numKvHeads: nkv,
    headDim: d,
    intermediateSize: m,
    vocabSize: vocab,
  } = c;
  const embed = get(w, "model.embed_tokens.weight", [vocab, h]);
  const invFreq = inverseFrequencies(c);
  let x: Rows = ids.map((id) => Float64Array.from(embed.subarray(id * h, (id + 1) * h)));
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}`;
    const n = rmsNorm(x, get(w, `${p}.input_layernorm.weight`, [h]), c.rmsNormEps);
    const q = linear(n, get(w, `${p}.self_attn.q_proj.weight`, [nh * d, h]), nh * d);
    const k = linear(n, get(w, `${p}.self_attn.k_proj.weight`, [nkv * d, h]), nkv * d);
    const v = linear(n, get(w, `${p}.self_attn.v_proj.weight`, [nkv * d, h]), nkv * d);
    q.forEach((row, pos) => rope(row, nh, d, pos, invFreq));
    k.forEach((row, pos) => rope(row, nkv, d, pos, invFreq));
    const attn = causalAttention(q, k, v, nh, nkv, d, 1 / Math.sqrt(d));
    addInPlace(x, linear(attn, get(w, `${p}.self_attn.o_proj.weight`, [h, nh * d]), h));
    const n2 = rmsNorm(x, get(w, `${p}.post_attention_layernorm.weight`, [h]), c.rmsNormEps);
    const gate = linear(n2, get(w, `${p}.mlp.gate_proj.weight`, [m, h]), m);
    const up = linear(n2, get(w, `${p}.mlp.up_proj.weight`, [m, h]), m);
    const act = gate.map((g, t) => g.map((v, i) => (v / (1 + Math.exp(-v))) * up[t]![i]!));
    addInPlace(x, linear(act, get(w, `${p}.mlp.down_proj.weight`, [h, m]), h));
  }
  x = rmsNorm(x, get(w, "model.norm.weight", [h]), c.rmsNormEps);
  const head = c.tieWordEmbeddings ? embed : get(w, "lm_head.weight", [vocab, h]);
  return logits(x, head, vocab);
}

/** OPTForCausalLM logits [sequence·vocab] for one sequence of token ids (no padding). */
export function optReference(w: Map<string, RefWeight>, c: OptConfig, ids: number[]): Float64Array {
  const { hiddenSize: h, numHeads: nh, ffnDim: f, vocabSize: vocab } = c;
  const d = h / nh;
  const eps = 1e-5;
  const dec = "model.decoder";
  const embed = get(w, `${dec}.embed_tokens.weight`, [vocab, h]);
  const positions = get(w, `${dec}.embed_positions.weight`, [c.maxPositionEmbeddings + 2, h]);
  const x: Rows = ids.map((id, pos) => {
    const row = new Float64Array(h);
    for (let i = 0; i < h; i++) row[i] = embed[id * h + i]! + positions[(pos + 2) * h + i]!;
    return row;
  });
  const param = (name: string, dims: number[]) => get(w, name, dims);
  for (let l = 0; l < c.numLayers; l++) {
    const p = `${dec}.layers.${l}`;
    const a = `${p}.self_attn`;
    const n = layerNorm(
      x,
      param(`${p}.self_attn_layer_norm.weight`, [h]),
      param(`${p}.self_attn_layer_norm.bias`, [h]),
      eps,
    );
    const q = linear(n, param(`${a}.q_proj.weight`, [h, h]), h, param(`${a}.q_proj.bias`, [h]));
    const k = linear(n, param(`${a}.k_proj.weight`, [h, h]), h, param(`${a}.k_proj.bias`, [h]));
    const v = linear(n, param(`${a}.v_proj.weight`, [h, h]), h, param(`${a}.v_proj.bias`, [h]));
    const attn = causalAttention(q, k, v, nh, nh, d, 1 / Math.sqrt(d));
    addInPlace(x, linear(attn, param(`${a}.out_proj.weight`, [h, h]), h, param(`${a}.out_proj.bias`, [h])));
    const n2 = layerNorm(
      x,
      param(`${p}.final_layer_norm.weight`, [h]),
      param(`${p}.final_layer_norm.bias`, [h]),
      eps,
    );
    const hiddenF = linear(n2, param(`${p}.fc1.weight`, [f, h]), f, param(`${p}.fc1.bias`, [f]));
    const relu = hiddenF.map((row) => row.map((v) => Math.max(v, 0)));
    addInPlace(x, linear(relu, param(`${p}.fc2.weight`, [h, f]), h, param(`${p}.fc2.bias`, [h])));
  }
  const out = layerNorm(
    x,
    param(`${dec}.final_layer_norm.weight`, [h]),
    param(`${dec}.final_layer_norm.bias`, [h]),
    eps,
  );
  return logits(out, embed, vocab);
}

/** max |a − b| / max |b|: the error relative to the scale of the reference values. */
export function maxRelativeDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}

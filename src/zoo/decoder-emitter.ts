// The pieces every decoder-only transformer of the zoo shares, emitted into a GraphBuilder: Linear in HF's
// weight layout, embeddings, the per-layer sequence helpers (length, positions, causal mask), head
// split/merge, scaled dot-product attention and the (tied) lm_head. The LLaMA (llama-blocks.ts) and OPT
// (opt.ts) layers are written with it.
//
// Layout choices, which the importer and the runtime see:
// - Every Linear keeps HF's weight layout [out, in] and runs as Gemm(transB=1), so no Transpose of a
//   big weight exists at run time; the hidden state therefore travels as 2-D [batch·sequence, hidden].
// - Each layer recomputes its own sequence helpers (positions, RoPE cos/sin, causal mask) from the
//   graph input `input_ids`, so a layer depends only on the previous hidden state, the graph input,
//   small constants and its own weights: a cut between layers crosses one activation. onnxruntime's
//   common-subexpression elimination merges the copies when the whole graph runs as one session.
// - With tied embeddings, the one initializer of the token embedding feeds both the Gather and the
//   lm_head Gemm: a shared weight, on purpose.
import { DataType } from "../format/onnx-types.js";
import { uniformStd, type GraphBuilder, type WeightInit } from "./graph-builder.js";

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

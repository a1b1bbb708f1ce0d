// One stage of a bundle as an ONNX model: the stage's nodes, copies of the small Constants and inline
// initializers they read, its weights as external-data references into the stage's range of
// weights.safetensors (no bytes: zero-byte placeholders), and as inputs/outputs exactly the tensors that
// cross its boundaries. Weights read by nodes of two stages are listed in both (the bytes are duplicated).
import { CicadaError } from "../errors.js";
import type { TensorSpec } from "../format/manifest.js";
import { setExternal } from "../format/onnx-io.js";
import {
  dtypeName,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from "../format/onnx-types.js";
import { requireType, type TensorType } from "./dtype-inference.js";
import { weightBytes, type GraphAnalysis } from "./graph-analysis.js";

/** A weight as a stage holds it. */
export interface StageWeight {
  /** Initializer name in the graph. */
  name: string;
  /** Key in weights.safetensors: the name for the first stage reading it, `<name>@stage<N>` for copies. */
  key: string;
  tensor: TensorProto;
  bytes: number;
  /** True if an earlier stage holds the same weight (these bytes are duplicates). */
  copy: boolean;
}

/** Which positions a stage covers and which weights it reads, in first-read order. */
export interface StageSlice {
  index: number;
  start: number;
  end: number;
  weights: StageWeight[];
}

/** Stage NNN's structure file, relative to the bundle. */
export function stageFile(index: number): string {
  return `stages/${String(index).padStart(3, "0")}.onnx`;
}

/** The external-data location stage NNN's graph names (its weight range, given in memory at load time). */
export function stageLocation(index: number): string {
  return `stage-${String(index).padStart(3, "0")}.weights`;
}

/** Splits the ordered nodes at `cuts` and assigns each stage its weights. */
export function sliceStages(a: GraphAnalysis, cuts: readonly number[]): StageSlice[] {
  const bounds = [0, ...cuts, a.order.length];
  const owner = new Map<string, number>();
  const slices: StageSlice[] = [];
  for (let s = 0; s + 1 < bounds.length; s++) {
    const seen = new Set<string>();
    const weights: StageWeight[] = [];
    for (let p = bounds[s]!; p < bounds[s + 1]!; p++) {
      for (const r of a.order[p]!.reads) {
        const tensor = a.initializers.get(r);
        const bytes = tensor ? weightBytes(tensor) : 0;
        if (!tensor || bytes === 0 || seen.has(r)) continue;
        seen.add(r);
        const copy = owner.has(r);
        if (!copy) owner.set(r, s);
        weights.push({ name: r, key: copy ? `${r}@stage${s}` : r, tensor, bytes, copy });
      }
    }
    slices.push({ index: s, start: bounds[s]!, end: bounds[s + 1]!, weights });
  }
  return slices;
}

/** A stage's boundaries and graph, ready to encode. */
export interface StageModel {
  model: ModelProto;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  nodeCount: number;
  opCounts: Record<string, number>;
}

function valueInfo(name: string, type: TensorType): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: type.elemType,
        ...(type.shape
          ? {
              shape: {
                dim: type.shape.map((d) =>
                  typeof d === "number" ? { dimValue: d } : typeof d === "string" ? { dimParam: d } : {},
                ),
              },
            }
          : {}),
      },
    },
  };
}

/** Calls `visit` on every tensor held in attributes of `node` (nested subgraphs included). */
function forEachAttributeTensor(node: NodeProto, visit: (t: TensorProto) => void): void {
  const walkGraph = (g: GraphProto) => {
    for (const t of g.initializer ?? []) visit(t);
    for (const n of g.node ?? []) forEachAttributeTensor(n, visit);
  };
  for (const at of node.attribute ?? []) {
    if (at.t) visit(at.t);
    for (const t of at.tensors ?? []) visit(t);
    if (at.g) walkGraph(at.g);
    for (const g of at.graphs ?? []) walkGraph(g);
  }
}

/**
 * Builds stage `slice`'s model. `placeOf` gives each weight's offset within the stage's range; `embed`
 * returns the bytes of a tensor stored outside the source model (small initializers and subgraph tensors
 * are written inline, since the source's external files are not part of the bundle).
 */
export async function buildStageModel(
  a: GraphAnalysis,
  types: Map<string, TensorType>,
  slice: StageSlice,
  placeOf: (w: StageWeight) => { offset: number; length: number },
  embed: (t: TensorProto) => Promise<Uint8Array>,
): Promise<StageModel> {
  const spec = (name: string): TensorSpec => {
    const t = requireType(types, name, a);
    const dtype = dtypeName(t.elemType);
    if (!dtype) {
      throw new CicadaError(
        "E_ONNX_UNSUPPORTED",
        `${a.source}: tensor '${name}' crosses a stage boundary with element type ${t.elemType}, which bundles do not support`,
      );
    }
    return { name, dtype, shape: t.shape };
  };
  const nodes = a.order.slice(slice.start, slice.end);
  const produced = new Set(nodes.flatMap((n) => n.outputs));
  const inputs: string[] = [];
  const constants: NodeProto[] = [];
  const inline: TensorProto[] = [];
  const seen = new Set<string>();
  for (const n of nodes) {
    for (const r of n.reads) {
      if (seen.has(r) || produced.has(r)) continue;
      seen.add(r);
      const c = a.constants.get(r);
      const init = a.initializers.get(r);
      if (c) {
        if (!constants.includes(c.node)) constants.push(c.node);
      } else if (init) {
        if (weightBytes(init) === 0) inline.push(init);
      } else {
        inputs.push(r);
      }
    }
  }
  const outputs = nodes.flatMap((n) => n.outputs).filter((o) => (a.lastUse.get(o) ?? -1) >= slice.end);

  const initializer: TensorProto[] = [];
  for (const w of slice.weights) {
    const t: TensorProto = { name: w.name, dims: w.tensor.dims ?? [], dataType: w.tensor.dataType ?? 0 };
    setExternal(t, { location: stageLocation(slice.index), ...placeOf(w) });
    initializer.push(t);
  }
  for (const t of inline) {
    initializer.push(
      t.dataLocation === 1
        ? { name: t.name, dims: t.dims ?? [], dataType: t.dataType ?? 0, rawData: await embed(t) }
        : t,
    );
  }
  const stageNodes = [...constants, ...nodes.map((n) => n.node)];
  const external: TensorProto[] = [];
  for (const n of stageNodes) forEachAttributeTensor(n, (t) => t.dataLocation === 1 && external.push(t));
  for (const t of external) {
    const bytes = await embed(t);
    delete t.externalData;
    delete t.dataLocation;
    t.rawData = bytes;
  }

  const outputSet = new Set(outputs);
  const valueInfos = (a.graph.valueInfo ?? []).filter(
    (v) => v.name && produced.has(v.name) && !outputSet.has(v.name),
  );
  const inputSpecs = inputs.map(spec);
  const outputSpecs = outputs.map(spec);
  const opCounts: Record<string, number> = {};
  for (const n of stageNodes) {
    const op = n.domain && n.domain !== "ai.onnx" ? `${n.domain}.${n.opType}` : (n.opType ?? "");
    opCounts[op] = (opCounts[op] ?? 0) + 1;
  }
  const model: ModelProto = {
    // NOTE: IR < 4 required initializers to be listed as graph inputs too; stage graphs do not list them.
    irVersion: Math.max(a.model.irVersion ?? 0, 4),
    opsetImport: a.model.opsetImport ?? [],
    producerName: "cicada-importer",
    producerVersion: a.model.producerVersion ?? "",
    ...(a.model.domain ? { domain: a.model.domain } : {}),
    ...(a.model.modelVersion ? { modelVersion: a.model.modelVersion } : {}),
    graph: {
      name: `${a.graph.name ?? "graph"}.stage${String(slice.index).padStart(3, "0")}`,
      node: stageNodes,
      initializer,
      input: inputs.map((name) => valueInfo(name, requireType(types, name, a))),
      output: outputs.map((name) => valueInfo(name, requireType(types, name, a))),
      valueInfo: valueInfos,
    },
    ...(a.model.functions?.length ? { functions: a.model.functions } : {}),
    metadataProps: [{ key: "cicada.stage", value: String(slice.index) }],
  };
  return { model, inputs: inputSpecs, outputs: outputSpecs, nodeCount: stageNodes.length, opCounts };
}

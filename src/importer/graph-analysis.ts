// What the importer needs to know about a graph before it can cut it: which tensors are weights, which
// nodes are free to replicate (small Constants), a topological order of the remaining nodes, and for each
// tensor where it is produced and where it is last read. Subgraphs of control-flow nodes (If/Loop/Scan)
// count as part of their node: the outer-scope names they read are the node's inputs too.
import { CicadaError } from "../errors.js";
import {
  AttributeType,
  dtypeBytes,
  numElements,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from "../format/onnx-types.js";

/** Initializers of at least this many bytes are weights (in weights.safetensors); smaller ones stay inline. */
export const WEIGHT_MIN_BYTES = 1024;

/** A node with its resolved reads and writes. */
export interface AnalyzedNode {
  node: NodeProto;
  /** Index in the source graph's node list. */
  sourceIndex: number;
  /** `node 'name' (Op)`, for messages. */
  label: string;
  /** Distinct tensors it reads: its inputs and the outer-scope names its subgraphs read. */
  reads: string[];
  /** Its non-empty outputs. */
  outputs: string[];
}

/** The analysed main graph. */
export interface GraphAnalysis {
  model: ModelProto;
  graph: GraphProto;
  /** File the model came from (for messages). */
  source: string;
  /** Initializers by name (large Constant nodes included, converted). */
  initializers: Map<string, TensorProto>;
  /** Graph inputs that are not initializers: the model's real inputs. */
  inputs: ValueInfoProto[];
  inputNames: Set<string>;
  /** Graph outputs, in order. */
  outputs: ValueInfoProto[];
  /** Small Constant nodes replicated into every stage that reads them, by output name. */
  constants: Map<string, AnalyzedNode>;
  /** The nodes to distribute over stages, in topological order (the "positions"). */
  order: AnalyzedNode[];
  /** Position in `order` of the node producing each tensor. */
  producer: Map<string, number>;
  /** Last position reading each tensor produced in `order`; `order.length` for graph outputs. */
  lastUse: Map<string, number>;
  /** Nodes removed because nothing they compute reaches a graph output. */
  prunedNodes: number;
}

/** A node's label for messages: its name and op type, or its index when it has no name. */
export function nodeLabel(node: NodeProto, index: number): string {
  return node.name ? `node '${node.name}' (${node.opType})` : `node #${index} (${node.opType})`;
}

/** Bytes of an initializer's data if it is a weight (fixed-size type, >= WEIGHT_MIN_BYTES), else 0. */
export function weightBytes(t: TensorProto): number {
  const bytes = numElements(t.dims ?? []) * dtypeBytes(t.dataType ?? 0);
  return bytes >= WEIGHT_MIN_BYTES ? bytes : 0;
}

function subgraphs(node: NodeProto): GraphProto[] {
  const out: GraphProto[] = [];
  for (const a of node.attribute ?? []) {
    if (a.g) out.push(a.g);
    if (a.graphs) out.push(...a.graphs);
  }
  return out;
}

/** Names a graph reads from its enclosing scopes (nested subgraphs included), in first-read order. */
export function outerScopeReads(graph: GraphProto, into: Set<string> = new Set()): Set<string> {
  const local = new Set<string>();
  for (const v of graph.input ?? []) if (v.name) local.add(v.name);
  for (const t of graph.initializer ?? []) if (t.name) local.add(t.name);
  for (const n of graph.node ?? []) for (const o of n.output ?? []) if (o) local.add(o);
  for (const n of graph.node ?? []) {
    for (const i of n.input ?? []) if (i && !local.has(i)) into.add(i);
    for (const g of subgraphs(n)) for (const name of outerScopeReads(g)) if (!local.has(name)) into.add(name);
  }
  return into;
}

function isReplicableConstant(node: NodeProto, outputs: Set<string>): boolean {
  return (
    node.opType === "Constant" &&
    (!node.domain || node.domain === "ai.onnx") &&
    !(node.output ?? []).some((o) => outputs.has(o))
  );
}

/**
 * Turns Constant nodes that hold a weight-sized tensor (or external data) into initializers, so that their
 * bytes go to weights.safetensors like any other weight instead of being copied into every stage graph.
 */
function constantsToInitializers(graph: GraphProto): void {
  const kept: NodeProto[] = [];
  for (const node of graph.node ?? []) {
    const value = node.attribute?.find((a) => a.name === "value" && a.type === AttributeType.TENSOR)?.t;
    const output = node.output?.[0];
    if (
      node.opType === "Constant" &&
      value &&
      output &&
      (weightBytes(value) > 0 || value.dataLocation === 1)
    ) {
      (graph.initializer ??= []).push({ ...value, name: output });
      continue;
    }
    kept.push(node);
  }
  graph.node = kept;
}

/** A binary min-heap of numbers: the ready queue of the topological sort (lowest source index first). */
class MinHeap {
  private readonly a: number[] = [];
  get size(): number {
    return this.a.length;
  }
  push(v: number): void {
    const a = this.a;
    a.push(v);
    for (let i = a.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (a[p]! <= a[i]!) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): number {
    const a = this.a;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length) {
      a[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]! < a[m]!) m = l;
        if (r < a.length && a[r]! < a[m]!) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}

/**
 * Topological order of `nodes` (indices), stable: among ready nodes the one first in the source comes
 * first, so an already sorted graph keeps its order. Cycles are E_ONNX_PARSE naming a node on the cycle.
 */
function topologicalOrder(nodes: AnalyzedNode[], producedBy: Map<string, number>, source: string): number[] {
  const pending = new Int32Array(nodes.length);
  const consumers: number[][] = nodes.map(() => []);
  nodes.forEach((n, i) => {
    for (const r of n.reads) {
      const p = producedBy.get(r);
      if (p !== undefined) {
        pending[i]!++;
        consumers[p]!.push(i);
      }
    }
  });
  const ready = new MinHeap();
  pending.forEach((c, i) => c === 0 && ready.push(i));
  const order: number[] = [];
  while (ready.size) {
    const i = ready.pop();
    order.push(i);
    for (const c of consumers[i]!) if (--pending[c]! === 0) ready.push(c);
  }
  if (order.length < nodes.length) {
    // Walk producers of unresolved reads from a stuck node until a node repeats: that one is on a cycle.
    const seen = new Set<number>();
    let at = pending.findIndex((c) => c > 0);
    let via = "";
    while (!seen.has(at)) {
      seen.add(at);
      const stuck = nodes[at]!.reads.find((r) => {
        const p = producedBy.get(r);
        return p !== undefined && pending[p]! > 0;
      })!;
      via = stuck;
      at = producedBy.get(stuck)!;
    }
    throw new CicadaError(
      "E_ONNX_PARSE",
      `${source}: the graph has a cycle: ${nodes[at]!.label} produces '${via}', which leads back to its own inputs`,
    );
  }
  return order;
}

/**
 * Analyses the main graph of `model` (which it normalises in place: large Constant nodes become
 * initializers). Refuses undefined inputs, duplicate producers and cycles (E_ONNX_PARSE) and features
 * a bundle cannot represent (E_ONNX_UNSUPPORTED).
 */
export function analyzeGraph(model: ModelProto, source: string): GraphAnalysis {
  const graph = model.graph!;
  if (graph.sparseInitializer?.length) {
    throw new CicadaError(
      "E_ONNX_UNSUPPORTED",
      `${source}: the graph has ${graph.sparseInitializer.length} sparse initializer(s); convert them to dense initializers first`,
    );
  }
  if (model.trainingInfo?.length) {
    throw new CicadaError(
      "E_ONNX_UNSUPPORTED",
      `${source}: the model carries training_info; a bundle holds an inference graph only, export without it`,
    );
  }
  constantsToInitializers(graph);
  const initializers = new Map<string, TensorProto>();
  for (const t of graph.initializer ?? []) if (t.name) initializers.set(t.name, t);
  const inputs = (graph.input ?? []).filter((v) => v.name && !initializers.has(v.name));
  const inputNames = new Set(inputs.map((v) => v.name!));
  const outputs = graph.output ?? [];
  const outputNames = new Set(outputs.map((v) => v.name!));

  const all: AnalyzedNode[] = (graph.node ?? []).map((node, i) => {
    const reads = new Set<string>();
    for (const r of node.input ?? []) if (r) reads.add(r);
    for (const g of subgraphs(node)) outerScopeReads(g, reads);
    return {
      node,
      sourceIndex: i,
      label: nodeLabel(node, i),
      reads: [...reads],
      outputs: (node.output ?? []).filter((o) => o),
    };
  });
  const producedBy = new Map<string, number>();
  all.forEach((n, i) => {
    for (const o of n.outputs) {
      if (producedBy.has(o) || initializers.has(o) || inputNames.has(o)) {
        throw new CicadaError(
          "E_ONNX_PARSE",
          `${source}: tensor '${o}' is defined twice (${n.label} writes it again); ONNX requires one definition`,
        );
      }
      producedBy.set(o, i);
    }
  });
  for (const n of all) {
    for (const r of n.reads) {
      if (!producedBy.has(r) && !initializers.has(r) && !inputNames.has(r)) {
        throw new CicadaError(
          "E_ONNX_PARSE",
          `${source}: ${n.label} reads tensor '${r}', which no node, graph input or initializer defines`,
        );
      }
    }
  }
  for (const o of outputNames) {
    if (!producedBy.has(o)) {
      throw new CicadaError(
        "E_ONNX_UNSUPPORTED",
        `${source}: graph output '${o}' is ${inputNames.has(o) || initializers.has(o) ? "a graph input or initializer" : "not produced by any node"}; outputs must be computed by a node`,
      );
    }
  }
  const sorted = topologicalOrder(all, producedBy, source);

  // Liveness, backwards from the graph outputs: nodes whose results nobody needs are dropped.
  const live = new Set(outputNames);
  const keep: AnalyzedNode[] = [];
  for (let k = sorted.length - 1; k >= 0; k--) {
    const n = all[sorted[k]!]!;
    if (!n.outputs.some((o) => live.has(o))) continue;
    keep.push(n);
    for (const r of n.reads) live.add(r);
  }
  keep.reverse();

  const constants = new Map<string, AnalyzedNode>();
  const order: AnalyzedNode[] = [];
  for (const n of keep) {
    if (isReplicableConstant(n.node, outputNames)) for (const o of n.outputs) constants.set(o, n);
    else order.push(n);
  }
  const producer = new Map<string, number>();
  const lastUse = new Map<string, number>();
  order.forEach((n, p) => {
    for (const r of n.reads) if (producer.has(r)) lastUse.set(r, p);
    for (const o of n.outputs) producer.set(o, p);
  });
  for (const o of outputNames) lastUse.set(o, order.length);
  return {
    model,
    graph,
    source,
    initializers,
    inputs,
    inputNames,
    outputs,
    constants,
    order,
    producer,
    lastUse,
    prunedNodes: all.length - keep.length,
  };
}

/**
 * How many tensors cross each cut: entry k (1 <= k < positions) counts the tensors produced before
 * position k and read at or after it (graph outputs produced before k included). Graph inputs, weights and
 * replicated constants never count: every stage that needs them gets its own.
 */
export function crossingCounts(a: GraphAnalysis): Int32Array {
  const n = a.order.length;
  const diff = new Int32Array(n + 2);
  for (const [t, p] of a.producer) {
    const last = a.lastUse.get(t);
    if (last === undefined || last <= p) continue;
    // Crosses every cut k with p < k <= last (a graph output's last use is n: it crosses to the end).
    diff[p + 1]!++;
    diff[Math.min(last, n - 1) + 1]!--;
  }
  const counts = new Int32Array(n + 1);
  let running = 0;
  for (let k = 0; k <= n; k++) {
    running += diff[k]!;
    counts[k] = k >= 1 && k < n ? running : 0;
  }
  return counts;
}

/** The tensors crossing cut k, in production order. */
export function crossingTensors(a: GraphAnalysis, k: number): string[] {
  const out: string[] = [];
  for (const [t, p] of a.producer) if (p < k && (a.lastUse.get(t) ?? -1) >= k) out.push(t);
  return out;
}

// Consecutive stages of a bundle as one ONNX model, built from the bundle alone (its structure graphs and
// weight ranges), so that MiniLoader can cache a construction with fewer sessions than the bundle has
// stages without needing the source model. The importer replicates small constants and duplicates shared
// weights into every stage that reads them under their original names, so a name met twice is one tensor.
import { decodeModel, encodeModel } from "../format/onnx-io.js";
import { readStageStructure, readStageWeights, stageExternalData, type Bundle } from "../format/bundle.js";
import type { NodeProto, TensorProto, ValueInfoProto } from "../format/onnx-types.js";
import { CicadaError } from "../errors.js";

/** A merged model and the in-memory external data of its weights (one entry per stage range). */
export interface MergedStages {
  model: Uint8Array;
  externalData: { path: string; data: Uint8Array }[];
}

/**
 * Stages `first`..`last` (inclusive) of `bundle` as one model: nodes in stage order, each tensor produced
 * once; inputs are what the group reads and does not produce; outputs are the last stage's outputs plus
 * anything a later stage (or the graph) reads from inside the group. Weights are read and verified.
 */
export async function mergeStages(bundle: Bundle, first: number, last: number): Promise<MergedStages> {
  const all = bundle.manifest.stages;
  if (!(
    Number.isInteger(first) &&
    Number.isInteger(last) &&
    0 <= first &&
    first <= last &&
    last < all.length
  )) {
    throw new CicadaError(
      "E_USAGE",
      `cannot merge stages ${first}..${last} of ${bundle.dir}: it has stages 0..${all.length - 1}`,
    );
  }
  const group = all.slice(first, last + 1);
  const models = await Promise.all(
    group.map(async (s) => decodeModel(await readStageStructure(bundle, s.index), s.file)),
  );
  const nodes: NodeProto[] = [];
  const initializers = new Map<string, TensorProto>();
  const types = new Map<string, ValueInfoProto>();
  const produced = new Set<string>();
  const inputs: string[] = [];
  for (const model of models) {
    const graph = model.graph ?? {};
    for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) {
      if (v.name && !types.has(v.name)) types.set(v.name, v);
    }
    for (const t of graph.initializer ?? [])
      if (t.name && !initializers.has(t.name)) initializers.set(t.name, t);
    for (const v of graph.input ?? []) {
      const name = v.name!;
      if (!produced.has(name) && !initializers.has(name) && !inputs.includes(name)) inputs.push(name);
    }
    for (const n of graph.node ?? []) {
      // A replicated constant: its outputs exist already.
      if ((n.output ?? []).every((o) => produced.has(o))) continue;
      nodes.push(n);
      for (const o of n.output ?? []) produced.add(o);
    }
  }
  const readLater = new Set([
    ...all.slice(last + 1).flatMap((s) => s.inputs.map((i) => i.name)),
    ...bundle.manifest.outputs.map((o) => o.name),
  ]);
  const outputs = [
    ...new Set([
      ...group[group.length - 1]!.outputs.map((o) => o.name),
      ...[...produced].filter((n) => readLater.has(n)),
    ]),
  ];
  const info = (name: string): ValueInfoProto => {
    const v = types.get(name);
    if (!v)
      throw new CicadaError("E_BUNDLE_FILE", `${bundle.dir}: no stage graph declares the type of '${name}'`);
    return v;
  };
  const base = models[0]!;
  const merged = encodeModel({
    ...base,
    graph: {
      name: `${bundle.manifest.model.name}-stages-${first}-${last}`,
      node: nodes,
      initializer: [...initializers.values()],
      input: inputs.map(info),
      output: outputs.map(info),
      valueInfo: [...types.values()].filter((v) => !inputs.includes(v.name!) && !outputs.includes(v.name!)),
    },
  });
  const externalData = [];
  for (const s of group) externalData.push(...stageExternalData(s, await readStageWeights(bundle, s.index)));
  return { model: merged, externalData };
}

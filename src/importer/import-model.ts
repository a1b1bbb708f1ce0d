// `importModel`: any ONNX model (embedded or external weights) -> a bundle directory (manifest.json,
// stages/NNN.onnx, weights.safetensors). The steps are each in their own module: graph analysis
// (topological order, liveness, replicated constants), element types of boundary tensors, the cut search,
// the stage graphs and the weights file; this one chooses the stage count, ties them together and writes
// the manifest. The directory appears complete or not at all.
import { mkdir, writeFile } from "node:fs/promises";
import { basename, extname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { CicadaError } from "../errors.js";
import { writeOutputDir } from "../format/atomic-output.js";
import {
  BUNDLE_FORMAT,
  BUNDLE_FORMAT_VERSION,
  MANIFEST_FILE,
  parseManifest,
  WEIGHTS_FILE,
  type Manifest,
  type Stage,
} from "../format/manifest.js";
import { sha256Of } from "../format/checksum.js";
import { encodeModel, readOnnxFile, tensorData } from "../format/onnx-io.js";
import { dtypeName, getMetadata } from "../format/onnx-types.js";
import {
  defaultStageCount,
  planMaxStageBytes,
  planStageCount,
  totalWeightBytes,
  type CutPlan,
  type CutProblem,
} from "./cut-search.js";
import { inferTensorTypes } from "./dtype-inference.js";
import { analyzeGraph, crossingCounts, weightBytes, type GraphAnalysis } from "./graph-analysis.js";
import { graphInputsOf, graphOutputsOf } from "./graph-inputs.js";
import { buildStageModel, sliceStages, stageFile, stageLocation } from "./stage-graph.js";
import { writeWeightFile } from "./weight-file.js";

/** Written into manifest.createdBy and the weights file's metadata. */
export const IMPORTER_ID = "cicada-node importer 1";

/** Options of {@link importModel}. */
export interface ImportOptions {
  /** Exact stage count (1..the number of nodes that can be separated). */
  stages?: number;
  /** Largest stage, in weight bytes: the fewest stages that fit. */
  maxStageBytes?: number;
  /** Model name for the manifest (default: metadata `cicada.name`, the graph name, or the file stem). */
  name?: string;
  /** Model family (default: metadata `cicada.family`, else null). */
  family?: string | null;
  /** Progress: phase `weights` reports bytes copied of the total. */
  onProgress?: (phase: string, done: number, total: number) => void;
}

/** What an import did. */
export interface ImportSummary {
  manifest: Manifest;
  bundleDir: string;
  durationMs: number;
  /** Bytes of shared weights written more than once (into each stage that reads them). */
  duplicatedBytes: number;
  /** Tensors crossing each cut, in order (length = stages - 1). */
  crossings: number[];
  /** The crossing threshold the cut search settled on. */
  threshold: number;
  /** Largest stage's weight bytes, and the ideal (total weight bytes / stages). */
  largestStageBytes: number;
  idealStageBytes: number;
  /** Nodes removed because no graph output depends on them. */
  prunedNodes: number;
  /** Size of weights.safetensors, and how much of it is alignment padding. */
  weightsFileBytes: number;
  paddingBytes: number;
}

function checkOptions(o: ImportOptions): void {
  if (o.stages !== undefined && o.maxStageBytes !== undefined) {
    throw new CicadaError("E_USAGE", "import: give a stage count or a maximum stage size, not both");
  }
  if (o.maxStageBytes !== undefined && !(Number.isFinite(o.maxStageBytes) && o.maxStageBytes > 0)) {
    throw new CicadaError(
      "E_USAGE",
      `import: maximum stage size ${o.maxStageBytes} must be a positive number of bytes`,
    );
  }
  if (o.stages !== undefined && !Number.isInteger(o.stages)) {
    throw new CicadaError("E_USAGE", `--stages ${o.stages} is not an integer`);
  }
}

function cutProblem(a: GraphAnalysis): CutProblem {
  const ids = new Map<string, number>();
  const bytes: number[] = [];
  const uses = a.order.map((n) => {
    const out: number[] = [];
    for (const r of n.reads) {
      const t = a.initializers.get(r);
      const b = t ? weightBytes(t) : 0;
      if (!b) continue;
      let id = ids.get(r);
      if (id === undefined) {
        ids.set(r, (id = bytes.length));
        bytes.push(b);
      }
      out.push(id);
    }
    return out;
  });
  return {
    positions: a.order.length,
    crossings: withFusionPenalty(a, crossingCounts(a)),
    uses,
    weightBytes: bytes,
  };
}

/** Unary elementwise activations onnxruntime fuses into the op that produces their input (Conv, Gemm...). */
const FUSED_ACTIVATIONS = new Set([
  "Relu",
  "LeakyRelu",
  "Sigmoid",
  "HardSigmoid",
  "Tanh",
  "Clip",
  "Gelu",
  "FastGelu",
  "QuickGelu",
  "Elu",
  "Selu",
  "Softplus",
  "HardSwish",
]);

/**
 * A cut between an op and the activation that reads its output crosses one tensor, but it prevents the
 * fusion onnxruntime would make of the two (Conv+Relu, Gemm+Relu) and costs an extra pass over the
 * activation. Counting such a cut as one more crossing makes the search prefer the cut after the pair.
 */
function withFusionPenalty(a: GraphAnalysis, crossings: Int32Array): Int32Array {
  for (let k = 1; k < a.order.length; k++) {
    const node = a.order[k]!.node;
    const producer = a.order[k - 1]!.node;
    if (FUSED_ACTIVATIONS.has(node.opType ?? "") && producer.output?.includes(node.input?.[0] ?? "")) {
      crossings[k] = crossings[k]! + 1;
    }
  }
  return crossings;
}

/** Names the nodes of positions [start, end) for messages. */
function describeRange(a: GraphAnalysis, start: number, end: number): string {
  const first = a.order[start]!.label;
  return end - start === 1 ? first : `the ${end - start} nodes from ${first} to ${a.order[end - 1]!.label}`;
}

function choosePlan(a: GraphAnalysis, p: CutProblem, o: ImportOptions, modelName: string): CutPlan {
  const possible = Math.max(1, p.positions);
  if (o.maxStageBytes !== undefined) {
    return planMaxStageBytes(p, o.maxStageBytes, (s, e) => describeRange(a, s, e));
  }
  if (o.stages !== undefined) {
    if (o.stages < 1 || o.stages > possible) {
      throw new CicadaError(
        "E_USAGE",
        `--stages ${o.stages} is out of range: ${modelName} can be cut into at most ${possible} stages`,
      );
    }
    return planStageCount(p, o.stages);
  }
  // The default count may be more than the weights can fill (one huge tensor, weight-free tails): every
  // stage costs a session, so a stage without weights is dropped and the plan made again with fewer.
  let stages = defaultStageCount(totalWeightBytes(p), possible);
  for (;;) {
    const plan = planStageCount(p, stages);
    const empty = plan.stageBytes.filter((b) => b === 0).length;
    if (empty === 0 || stages === 1) return plan;
    stages = Math.max(1, stages - empty);
  }
}

/** Graph names exporters write whatever the model (PyTorch, onnx helpers): they name nothing. */
const GENERIC_GRAPH_NAMES = new Set(["torch_jit", "torch-jit-export", "main_graph", "graph"]);

/** options.name, else metadata `cicada.name`, else a specific graph name, else the file stem. */
function modelNameOf(file: string, o: ImportOptions, metadataName?: string, graphName?: string): string {
  const graph = graphName && !GENERIC_GRAPH_NAMES.has(graphName) ? graphName : undefined;
  return o.name || metadataName || graph || basename(file, extname(file)) || "model";
}

/**
 * Imports the ONNX model at `sourcePath` into the new bundle directory `outDir` (refused with
 * E_OUTPUT_EXISTS if it exists; nothing is left behind on failure).
 */
export async function importModel(
  sourcePath: string,
  outDir: string,
  options: ImportOptions = {},
): Promise<ImportSummary> {
  checkOptions(options);
  const t0 = performance.now();
  const summary = await writeOutputDir(outDir, async (dir) => {
    const file = await readOnnxFile(sourcePath);
    const { model } = file;
    const name = modelNameOf(sourcePath, options, getMetadata(model, "cicada.name"), model.graph?.name);
    const inputs = graphInputsOf(model, sourcePath);
    const outputs = graphOutputsOf(model, sourcePath);
    const a = analyzeGraph(model, sourcePath);
    const types = inferTensorTypes(a);
    const problem = cutProblem(a);
    const plan = choosePlan(a, problem, options, name);
    const slices = sliceStages(a, plan.cuts);

    const weights = await writeWeightFile(
      join(dir, WEIGHTS_FILE),
      slices,
      { dir: file.dir, source: sourcePath },
      { format: BUNDLE_FORMAT, "cicada.model": name, "cicada.stages": String(slices.length) },
      (done, total) => options.onProgress?.("weights", done, total),
    );
    await mkdir(join(dir, "stages"));
    const stages: Stage[] = [];
    for (const slice of slices) {
      const range = weights.ranges[slice.index]!;
      const built = await buildStageModel(
        a,
        types,
        slice,
        (w) => range.places.get(w.key)!,
        (t) => tensorData(t, file.dir, sourcePath),
      );
      const graphBytes = encodeModel(built.model);
      await writeFile(join(dir, stageFile(slice.index)), graphBytes);
      stages.push({
        index: slice.index,
        file: stageFile(slice.index),
        fileBytes: graphBytes.byteLength,
        fileChecksum: sha256Of(graphBytes),
        inputs: built.inputs,
        outputs: built.outputs,
        weights: {
          location: stageLocation(slice.index),
          offset: range.offset,
          length: range.length,
          checksum: range.checksum,
        },
        tensors: slice.weights.map((w) => ({
          name: w.name,
          key: w.key,
          dtype: dtypeName(w.tensor.dataType ?? 0)!,
          shape: [...(w.tensor.dims ?? [])],
          ...range.places.get(w.key)!,
        })),
        nodeCount: built.nodeCount,
        opCounts: built.opCounts,
      });
    }
    const uniqueBytes = totalWeightBytes(problem);
    const manifestJson: Manifest = {
      format: BUNDLE_FORMAT,
      formatVersion: BUNDLE_FORMAT_VERSION,
      model: {
        name,
        family: options.family !== undefined ? options.family : (getMetadata(model, "cicada.family") ?? null),
        // Absolute, so that eager and ort-best find it from any working directory.
        source: resolve(sourcePath),
        sourceBytes: file.fileBytes,
        sourceChecksum: file.fileChecksum,
        irVersion: model.irVersion ?? 0,
        opsetImport: (model.opsetImport ?? []).map((o) => ({
          domain: o.domain ?? "",
          version: o.version ?? 0,
        })),
        producer: model.producerName ?? "",
      },
      inputs,
      outputs,
      weightsFile: WEIGHTS_FILE,
      totalWeightBytes: uniqueBytes,
      stages,
      createdBy: IMPORTER_ID,
    };
    // Validate what we write against the schema the runtime will read it with.
    const manifest = parseManifest(manifestJson, join(outDir, MANIFEST_FILE));
    await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + "\n");
    const duplicatedBytes = slices.reduce(
      (n, s) => n + s.weights.filter((w) => w.copy).reduce((m, w) => m + w.bytes, 0),
      0,
    );
    return {
      manifest,
      bundleDir: outDir,
      duplicatedBytes,
      crossings: plan.cuts.map((k) => problem.crossings[k]!),
      threshold: plan.threshold,
      largestStageBytes: Math.max(...plan.stageBytes),
      idealStageBytes: uniqueBytes / slices.length,
      prunedNodes: a.prunedNodes,
      weightsFileBytes: weights.fileBytes,
      paddingBytes: weights.paddingBytes,
    };
  });
  return { ...summary, durationMs: performance.now() - t0 };
}

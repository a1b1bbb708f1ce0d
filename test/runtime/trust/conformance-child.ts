// Child process of the ONNX backend conformance suite (onnx-conformance.test.ts): one runtime for its
// whole life, with the suite's ONE shared cache root, and for each case: plain onnxruntime on the case's
// model.onnx (cases it cannot run are skipped), the importer, then every strategy through the public API
// (loadModel / run) on every test data set, compared with the shipped outputs. Each strategy's outcome is
// correct, a coded refusal, a wrong output or an uncoded error; crashes and hangs are seen by the supervisor.
import { existsSync, readdirSync } from "node:fs";
import { rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { isCicadaError } from "../../../src/errors.js";
import { importModel } from "../../../src/importer/import-model.js";
import { readOnnxFile } from "../../../src/format/onnx-io.js";
import type { GraphProto } from "../../../src/format/onnx-types.js";
import type { HostTensor } from "../../../src/runtime/host-tensor.js";
import { loadModel } from "../../../src/runtime/load-model.js";
import { runEager } from "../../../src/runtime/reference-runner.js";
import { createRuntime, type Runtime } from "../../../src/runtime/runtime.js";
import type { StrategyName } from "../../../src/config.js";
import { describeError, serveJobs, type ErrorFacts } from "./job-child.js";
import { compareOutputs, readTensorFile } from "./tensors.js";

/** One case: a directory with model.onnx and test_data_set_N/. */
export interface CaseJob {
  id: string;
  dir: string;
  strategies: StrategyName[];
}

/** How one strategy did on a case. */
export type StrategyOutcome =
  | { kind: "correct" }
  | { kind: "refused"; code: string; message: string }
  | { kind: "wrong"; detail: string }
  | { kind: "uncoded"; error: ErrorFacts };

/** How a case ended (before the supervisor's crash/hang classes). */
export type CaseResult =
  | { status: "skipped"; reason: string; detail?: string }
  | { status: "import-refused"; code: string; message: string }
  | { status: "import-uncoded"; error: ErrorFacts }
  | {
      status: "tried";
      /** `shipped`: the test data's outputs; `eager`: onnxruntime's own (it disagrees with the shipped ones). */
      reference: "shipped" | "eager";
      referenceDetail?: string;
      /** Stages of the bundle the importer made. */
      stages: number;
      strategies: Partial<Record<StrategyName, StrategyOutcome>>;
    };

interface DataSet {
  feeds: Record<string, HostTensor>;
  expected: Record<string, HostTensor>;
}

const [cacheRoot, workRoot, cacheMode, stagesArg] = process.argv.slice(2) as [
  string,
  string,
  string?,
  string?,
];
const stages = Number(stagesArg ?? 0);
const runtime = await createRuntime({ cacheRoot, intraOpNumThreads: 1 });

/**
 * The runtime a case runs on: the shared one, or (diagnosis only: CICADA_CONFORMANCE_CACHE=per-case) the
 * same workers with a cache root of the case's own, which separates cache-sharing bugs from the rest.
 */
function runtimeFor(id: string): Runtime {
  return cacheMode === "per-case" ? { ...runtime, cacheRoot: join(cacheRoot, id) } : runtime;
}

/** Operators whose outputs depend on a random generator: their shipped outputs cannot be reproduced. */
const RANDOM_OPS = new Set([
  "Bernoulli",
  "Dropout",
  "Multinomial",
  "RandomNormal",
  "RandomNormalLike",
  "RandomUniform",
  "RandomUniformLike",
]);

/** The operator types of a graph and of its subgraphs. */
function opTypes(graph: GraphProto, into = new Set<string>()): Set<string> {
  for (const n of graph.node ?? []) {
    into.add(n.opType ?? "");
    for (const a of n.attribute ?? []) {
      if (a.g) opTypes(a.g, into);
      for (const g of a.graphs ?? []) opTypes(g, into);
    }
  }
  return into;
}

function clone(feeds: Record<string, HostTensor>): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const [k, t] of Object.entries(feeds)) out[k] = { ...t, dims: [...t.dims], data: t.data.slice() };
  return out;
}

/** The case's data sets, or why the harness cannot represent them. */
async function readCase(dir: string): Promise<{ sets: DataSet[] } | { skip: string }> {
  const { model } = await readOnnxFile(join(dir, "model.onnx"));
  const graph = model.graph!;
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  const inputs = (graph.input ?? []).filter((i) => !initializers.has(i.name));
  const outputs = graph.output ?? [];
  const random = [...opTypes(graph)].filter((op) => RANDOM_OPS.has(op));
  // Dropout is random only in training mode (a training_mode input); inference Dropout is the identity.
  const training = (graph.node ?? []).some((n) => n.opType === "Dropout" && (n.input ?? []).length >= 3);
  if (random.some((op) => op !== "Dropout") || training)
    return { skip: "random operators (outputs depend on the generator)" };
  if ([...inputs, ...outputs].some((v) => !v.type?.tensorType))
    return { skip: "non-tensor graph inputs or outputs (sequence, optional, map)" };
  const sets: DataSet[] = [];
  const setDirs = readdirSync(dir)
    .filter((d) => d.startsWith("test_data_set_"))
    .sort();
  for (const setDir of setDirs) {
    const files = readdirSync(join(dir, setDir));
    const read = (prefix: string, names: string[]) => {
      const tensors: Record<string, HostTensor> = {};
      for (let i = 0; existsSync(join(dir, setDir, `${prefix}_${i}.pb`)); i++) {
        const decoded = readTensorFile(join(dir, setDir, `${prefix}_${i}.pb`));
        if (!decoded.ok) return decoded.reason;
        const name = names.includes(decoded.name) ? decoded.name : names[i];
        if (name === undefined) return `${prefix}_${i}.pb has no graph ${prefix} to go to`;
        tensors[name] = decoded.tensor;
      }
      return tensors;
    };
    const feeds = read(
      "input",
      inputs.map((i) => i.name!),
    );
    const expected = read(
      "output",
      outputs.map((o) => o.name!),
    );
    if (typeof feeds === "string") return { skip: feeds };
    if (typeof expected === "string") return { skip: expected };
    if (!files.some((f) => f.startsWith("output_"))) return { skip: "no expected outputs" };
    sets.push({ feeds, expected });
  }
  if (!sets.length) return { skip: "no test data sets" };
  return { sets };
}

async function runCase(job: CaseJob, phase: (name: string) => void): Promise<CaseResult> {
  phase("read");
  const modelPath = join(job.dir, "model.onnx");
  let read;
  try {
    read = await readCase(job.dir);
  } catch (e) {
    // Our own ONNX decoder refusing the model: the importer will refuse it the same way.
    if (isCicadaError(e)) return { status: "import-refused", code: e.code, message: e.message };
    throw e;
  }
  if ("skip" in read) return { status: "skipped", reason: read.skip };
  const { sets } = read;

  phase("eager reference");
  const references: Record<string, HostTensor>[] = [];
  let reference: "shipped" | "eager" = "shipped";
  let referenceDetail: string | undefined;
  for (const set of sets) {
    let first;
    try {
      first = (await runEager(modelPath, clone(set.feeds))).outputs;
    } catch (e) {
      return { status: "skipped", reason: "onnxruntime cannot run", detail: describeError(e).message };
    }
    const differs = compareOutputs(first, set.expected);
    if (!differs) {
      references.push(set.expected);
      continue;
    }
    // onnxruntime itself disagrees with the shipped outputs: nondeterministic, or onnxruntime's numerics.
    const again = (await runEager(modelPath, clone(set.feeds))).outputs;
    if (compareOutputs(again, first, { rtol: 0, atol: 0 }))
      return { status: "skipped", reason: "nondeterministic (two onnxruntime runs differ)" };
    reference = "eager";
    referenceDetail = differs;
    references.push(first);
  }

  phase("import");
  const bundleDir = join(workRoot, "bundles", job.id.replace(/\//g, "__"));
  await rm(bundleDir, { recursive: true, force: true });
  let stageCount;
  try {
    stageCount = await importInto(modelPath, bundleDir);
  } catch (e) {
    if (isCicadaError(e)) return { status: "import-refused", code: e.code, message: e.message };
    return { status: "import-uncoded", error: describeError(e) };
  }

  const strategies: Partial<Record<StrategyName, StrategyOutcome>> = {};
  for (const strategy of job.strategies) {
    phase(`load ${strategy}`);
    strategies[strategy] = await tryStrategy(bundleDir, strategy, sets, references, phase);
  }
  return {
    status: "tried",
    reference,
    stages: stageCount,
    ...(referenceDetail ? { referenceDetail } : {}),
    strategies,
  };
}

/**
 * Imports with the importer's default stage count, or with `stages` (CICADA_CONFORMANCE_STAGES, to exercise
 * the cut) where the model has that many separable positions (else the default).
 */
async function importInto(modelPath: string, bundleDir: string): Promise<number> {
  if (stages > 1) {
    try {
      return (await importModel(modelPath, bundleDir, { stages })).manifest.stages.length;
    } catch (e) {
      if (!isCicadaError(e, "E_USAGE")) throw e;
    }
  }
  return (await importModel(modelPath, bundleDir)).manifest.stages.length;
}

async function tryStrategy(
  bundleDir: string,
  strategy: StrategyName,
  sets: DataSet[],
  references: Record<string, HostTensor>[],
  phase: (name: string) => void,
): Promise<StrategyOutcome> {
  let model;
  try {
    model = await loadModel(runtimeFor(basename(bundleDir)), bundleDir, { strategy });
    for (let i = 0; i < sets.length; i++) {
      phase(`run ${strategy} set ${i}`);
      const { outputs } = await model.run(clone(sets[i]!.feeds));
      const differs = compareOutputs(outputs, references[i]!);
      if (differs) return { kind: "wrong", detail: `data set ${i}: ${differs}` };
    }
    return { kind: "correct" };
  } catch (e) {
    if (isCicadaError(e)) return { kind: "refused", code: e.code, message: describeError(e).message };
    return { kind: "uncoded", error: describeError(e) };
  } finally {
    phase(`dispose ${strategy}`);
    await model?.dispose();
  }
}

serveJobs<CaseJob>(runCase, () => runtime.close());

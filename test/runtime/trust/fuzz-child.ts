// Child process of the bundle fuzzer (bundle-fuzz.test.ts). At start it makes (once per fuzz root) a tiny
// three-stage MLP bundle, its derived forms for every strategy (the pristine cache) and the canaries: files
// outside every bundle whose floats are all 31337 (stage graphs of the same interface, external-data files,
// exact copies of the bundle's own files) with their access times set back, so that a read of any of them
// is seen (the access time moves) and any output computed from them is recognisable. For each mutant: copy,
// mutate, then every strategy from its own copy of the cache; each run must give the reference output or a
// coded error, read no canary, and (cache mutants) the next load must be correct again.
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { isCicadaError } from "../../../src/errors.js";
import { encodeModel } from "../../../src/format/onnx-io.js";
import { DataType } from "../../../src/format/onnx-types.js";
import { importModel } from "../../../src/importer/import-model.js";
import type { HostTensor } from "../../../src/runtime/host-tensor.js";
import { loadModel, prepareModel, type LoadOptions } from "../../../src/runtime/load-model.js";
import { runEager, runSequential } from "../../../src/runtime/reference-runner.js";
import { createRuntime, type Runtime } from "../../../src/runtime/runtime.js";
import { STRATEGIES } from "../../../src/config.js";
import { SeededRandom } from "../../../src/util/seeded-random.js";
import { constant, inputX, modelOf, node, vi, writeMlp } from "../../importer/tiny-models.js";
import { EDITS } from "./fuzz-edits.js";
import {
  CANARY_VALUE,
  layoutOf,
  mutateBytes,
  readManifestJson,
  resolveRole,
  type FuzzLayout,
} from "./fuzz-files.js";
import type { Mutant } from "./fuzz-mutants.js";
import { describeError, serveJobs, type ErrorFacts } from "./job-child.js";
import { compareCosine, maxAbs } from "./tensors.js";

/** Width of the fuzz model: each [32, 32] matrix (4 KiB) goes to the weights file, each bias stays inline. */
export const FUZZ_WIDTH = 32;

/** The strategies and plans every mutant is run with. */
export const FUZZ_PLANS: { name: string; options: LoadOptions }[] = [
  ...STRATEGIES.filter((s) => s !== "cicada").map((strategy) => ({ name: strategy, options: { strategy } })),
  { name: "cicada/whole", options: { strategy: "cicada", plan: "whole" } },
  { name: "cicada/pipeline", options: { strategy: "cicada", plan: "pipeline" } },
];

/** How one run (load, cold run, warm run) ended. */
export type RunOutcome =
  | { kind: "correct" }
  | { kind: "coded"; code: string; message: string }
  | { kind: "wrong"; detail: string }
  | { kind: "uncoded"; error: ErrorFacts };

/** One strategy on one mutant. */
export interface Attempt {
  plan: string;
  outcome: RunOutcome;
  /** Canary files read during the run, and whether an output held canary values. */
  escaped: string[];
  /** Cache mutants: the next load, which must be correct. */
  heal?: RunOutcome;
}

/** A mutant's result. */
export type MutantResult =
  | { status: "target-missing"; detail: string }
  | { status: "ran"; applied: string; expected: "reference" | "sequential" | "refusal"; attempts: Attempt[] };

const layout = layoutOf(process.argv[2]!);
const runtime = await createRuntime({ cacheRoot: layout.cache, intraOpNumThreads: 1 });
const feeds = inputX(7, FUZZ_WIDTH);
if (!existsSync(join(layout.root, "pristine", "done"))) await setUp(layout);
const reference = (await runEager(layout.source, feeds)).outputs;

async function setUp(l: FuzzLayout): Promise<void> {
  rmSync(join(l.root, "pristine"), { recursive: true, force: true });
  await writeMlp(join(l.root, "src"), 3, FUZZ_WIDTH);
  await importModel(l.source, l.bundle, { stages: 3 });
  for (const strategy of STRATEGIES) await prepareModel(runtime, l.bundle, strategy);
  mkdirSync(l.canary, { recursive: true });
  mkdirSync(l.work, { recursive: true });
  const floats = new Float32Array(16384).fill(CANARY_VALUE);
  const canaryBin = new Uint8Array(floats.buffer);
  writeFileSync(join(l.canary, "canary.bin"), canaryBin);
  // The working directory holds what a stage graph might name when onnxruntime resolves it there.
  for (const name of ["canary.bin", "stage-000.weights", "stage-001.weights", "stage-002.weights"])
    writeFileSync(join(l.work, name), canaryBin);
  cpSync(join(l.bundle, "weights.safetensors"), join(l.canary, "weights-copy.safetensors"));
  cpSync(join(l.bundle, "stages"), join(l.canary, "stages-copy"), { recursive: true });
  const m = readManifestJson(l.bundle);
  m.stages.forEach((s, i) => {
    // A valid graph with stage i's interface whose every output is CANARY_VALUE.
    const input = s.inputs[0]!.name;
    const shape = [1, FUZZ_WIDTH];
    const model = modelOf({
      name: `canary-${i}`,
      node: [
        constant("zero", [0], []),
        constant("big", [CANARY_VALUE], []),
        node("Mul", [input, "zero"], ["nothing"]),
        ...s.outputs.map((o) => node("Add", ["nothing", "big"], [o.name])),
      ],
      input: s.inputs.map((x) => vi(x.name, DataType.FLOAT, shape)),
      output: s.outputs.map((o) => vi(o.name, DataType.FLOAT, shape)),
    });
    writeFileSync(join(l.canary, `stage-${i}.onnx`), encodeModel(model));
  });
  // A whole model of the source's interface (x -> y) whose output is CANARY_VALUE everywhere.
  const whole = modelOf({
    name: "canary-model",
    node: [
      constant("zero", [0], []),
      constant("big", [CANARY_VALUE], []),
      node("Mul", ["x", "zero"], ["nothing"]),
      node("Add", ["nothing", "big"], ["y"]),
    ],
    input: [vi("x", DataType.FLOAT, [1, FUZZ_WIDTH])],
    output: [vi("y", DataType.FLOAT, [1, FUZZ_WIDTH])],
  });
  writeFileSync(join(l.canary, "model.onnx"), encodeModel(whole));
  writeFileSync(join(l.root, "pristine", "done"), "");
}

/** Every canary file (outside all bundles). */
function canaryFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.isFile()) out.push(join(dir, e.name));
    }
  };
  walk(layout.canary);
  walk(layout.work);
  return out;
}

/** Sets each canary's access time an hour before its modification time: any read moves it (relatime). */
function armCanaries(): void {
  for (const f of canaryFiles()) {
    const s = statSync(f);
    utimesSync(f, new Date(s.mtimeMs - 3_600_000), new Date(s.mtimeMs));
  }
}

function readCanaries(): string[] {
  return canaryFiles().filter((f) => {
    const s = statSync(f);
    return s.atimeMs > s.mtimeMs - 3_600_000 + 1000;
  });
}

function clone(f: Record<string, HostTensor>): Record<string, HostTensor> {
  return Object.fromEntries(Object.entries(f).map(([k, t]) => [k, { ...t, data: t.data.slice() }]));
}

/** Load, run cold, run warm; judged against `expected` (undefined: only a coded error is right). */
async function attempt(
  rt: Runtime,
  bundle: string,
  options: LoadOptions,
  expected: Record<string, HostTensor> | undefined,
  leaks: string[],
): Promise<RunOutcome> {
  let model;
  try {
    model = await loadModel(rt, bundle, options);
    for (const when of ["cold", "warm"]) {
      const { outputs } = await model.run(clone(feeds));
      for (const [name, t] of Object.entries(outputs))
        if (maxAbs(t) >= CANARY_VALUE / 2) leaks.push(`${when} output ${name} holds canary values`);
      if (!expected)
        return { kind: "wrong", detail: `${when} run gave outputs where the bundle's own stages refuse` };
      for (const [name, e] of Object.entries(expected)) {
        const d = compareCosine(outputs[name], e);
        if (d) return { kind: "wrong", detail: `${when} run, output ${name}: ${d}` };
      }
    }
    return { kind: "correct" };
  } catch (e) {
    if (isCicadaError(e)) return { kind: "coded", code: e.code, message: describeError(e).message };
    return { kind: "uncoded", error: describeError(e) };
  } finally {
    await model?.dispose().catch(() => {});
  }
}

async function runMutant(m: Mutant, phase: (p: string) => void): Promise<MutantResult> {
  phase("apply");
  const dir = join(layout.root, "m", m.id);
  rmSync(dir, { recursive: true, force: true });
  const bundle = join(dir, "bundle");
  const master = join(dir, "master", "cache");
  cpSync(layout.bundle, bundle, { recursive: true });
  mkdirSync(master, { recursive: true });
  if (m.warm) cpSync(layout.cache, master, { recursive: true });
  const random = new SeededRandom(m.seed, m.id);
  const ctx = { layout, bundle, cache: master, random: () => random.next() };
  let applied = m.what;
  try {
    if (m.edit) EDITS[m.edit]!.apply(ctx);
    else {
      const path = resolveRole(ctx, m.bytes!.role);
      if (!path || !existsSync(path))
        return { status: "target-missing", detail: `${m.bytes!.role} resolves to nothing` };
      applied = `${m.bytes!.role}: ${mutateBytes(path, m.bytes!.how, ctx.random)}`;
    }
  } catch (e) {
    return { status: "target-missing", detail: describeError(e).message };
  }
  phase("expectation");
  let expected: Record<string, HostTensor> | undefined = reference;
  let expectation: "reference" | "sequential" | "refusal" = "reference";
  if (m.expect === "sequential") {
    try {
      expected = (await runSequential(bundle, clone(feeds))).outputs;
      expectation = "sequential";
    } catch (e) {
      if (!isCicadaError(e)) throw e;
      expected = undefined;
      expectation = "refusal";
    }
  }
  const attempts: Attempt[] = [];
  for (const [k, plan] of FUZZ_PLANS.entries()) {
    if (m.stagedOnly && (plan.name === "eager" || plan.name === "ort-best")) continue;
    const cache = join(dir, `run-${k}`, "cache");
    cpSync(master, cache, { recursive: true });
    const rt: Runtime = { ...runtime, cacheRoot: cache };
    armCanaries();
    phase(`${plan.name} load and run`);
    const leaks: string[] = [];
    const outcome = await attempt(rt, bundle, plan.options, expected, leaks);
    const escaped = [...readCanaries(), ...leaks];
    const result: Attempt = { plan: plan.name, outcome, escaped };
    if (m.heal) {
      phase(`${plan.name} second load`);
      armCanaries();
      const again: string[] = [];
      result.heal = await attempt(rt, bundle, plan.options, expected, again);
      escaped.push(...[...readCanaries(), ...again].map((e) => `${e} (second load)`));
    }
    attempts.push(result);
  }
  // A failure the runtime left unobserved in the background kills the process: let it happen while the
  // supervisor still attributes it to this mutant.
  phase("settle");
  await new Promise((resolve) => setTimeout(resolve, 100));
  rmSync(dir, { recursive: true, force: true });
  return { status: "ran", applied, expected: expectation, attempts };
}

serveJobs<Mutant>(runMutant, () => runtime.close());

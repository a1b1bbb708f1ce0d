// `cicada run <bundle|model.onnx>`: one cold start (load + first run) with a reference strategy, its
// timings, and with --check the outputs compared against eager on the original model.
import type { Command } from "commander";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { CicadaError, isCicadaError } from "../../errors.js";
import { openBundle, type Bundle } from "../../format/bundle.js";
import { MANIFEST_FILE } from "../../format/manifest.js";
import { agrees, compareTensors, describeSimilarity, type Similarity } from "../../metrics/similarity.js";
import { readOnnxFile } from "../../format/onnx-io.js";
import { graphInputsOf } from "../../importer/graph-inputs.js";
import { ensureModelBundle } from "../../bench/model-cache.js";
import type { HostTensor } from "../../runtime/host-tensor.js";
import { randomInputs, readInputsFile, tensorsToJson, validateInputs } from "../../runtime/model-inputs.js";
import { runEager, runSequential, type ReferenceRun } from "../../runtime/reference-runner.js";
import { choiceFlag, intFlag } from "../flags.js";
import { loadModel, prepareModel, type LoadOptions, type PlanName } from "../../runtime/load-model.js";
import { createRuntime } from "../../runtime/runtime.js";
import { DEFAULTS, HAZARDS, STRATEGIES, type Hazard, type StrategyName } from "../../config.js";
import { UNITS, unionLength, unitTimes, utilization } from "../../metrics/trace.js";
import { ganttSvg } from "../../report/gantt.js";
import { writeFileAtomic } from "../../format/atomic-output.js";
import { stageTable } from "../format-table.js";

const RUN_STRATEGIES = [...STRATEGIES, "sequential"] as const;
/** The correctness bar of every pipelined strategy against eager. */
export const COSINE_THRESHOLD = 0.99999;

interface RunOptions {
  strategy: string;
  json?: boolean;
  check?: boolean;
  inputs?: string;
  seed: string;
  reference?: string;
  gantt?: string;
  outputs?: string;
  prepack?: boolean;
  plan: string;
  hazard: string;
  memoryBudgetMb?: string;
}

function isBundle(target: string): boolean {
  return existsSync(target) && statSync(target).isDirectory() && existsSync(join(target, MANIFEST_FILE));
}

/** What a cold start through the runtime looked like: its plan, utilisation and units. */
interface PipelineFacts {
  plan: PlanName;
  /** The hazard rule the pipeline's loads were ordered (and its waits measured) by; absent for a whole plan. */
  hazard?: Hazard;
  utilization: number;
  units: ReturnType<typeof unitTimes>;
  /** Bytes the process read from storage during the load and run (page faults of mapped weights included). */
  storageReadBytes?: number;
}

/** Timings and unit breakdown of one cold start through the runtime. */
export interface PipelinedRun {
  result: ReferenceRun;
  pipeline: PipelineFacts;
}

/**
 * One cold start of `bundle` with `strategy` in a fresh runtime: derived forms (MiniLoader cache, PISeL
 * stage files, ort-best model) are built first, outside the clock; then load + first run are timed.
 */
export async function runPipelined(
  bundle: Bundle,
  strategy: StrategyName,
  feeds: Record<string, HostTensor>,
  gantt?: string,
  load: Omit<LoadOptions, "strategy"> = {},
): Promise<PipelinedRun> {
  const runtime = await createRuntime();
  try {
    await prepareModel(runtime, bundle.dir, strategy, load.plan);
    const t0 = performance.now();
    const model = await loadModel(runtime, bundle.dir, { ...load, strategy });
    const run = await model.run(feeds);
    const totalMs = performance.now() - t0;
    await model.dispose();
    const pipeline = {
      plan: model.plan,
      ...(run.trace.hazard ? { hazard: run.trace.hazard } : {}),
      utilization: utilization(run.trace),
      units: unitTimes(run.trace),
      ...(run.trace.storageReadBytes !== undefined ? { storageReadBytes: run.trace.storageReadBytes } : {}),
    };
    if (gantt) {
      const title = `${bundle.manifest.model.name}: ${strategy} cold start (${totalMs.toFixed(1)} ms)`;
      await writeFileAtomic(gantt, ganttSvg(run.trace, title));
    }
    const stageMs = (unit: string, i: number) =>
      run.trace.events
        .filter((e) => e.unit === unit && e.stage === i)
        .reduce((n, e) => n + e.end - e.start, 0);
    const count = Math.max(0, ...run.trace.events.map((e) => e.stage + 1));
    const result: ReferenceRun = {
      strategy,
      outputs: run.outputs,
      totalMs,
      // Wall time during which some stage was being built: with the WeightDecoupler L and A overlap, and
      // their summed work could exceed the whole cold start.
      createMs: unionLength(run.trace.events.filter((e) => e.unit === "L" || e.unit === "A")),
      runMs: pipeline.units.E.workMs,
      stages: Array.from({ length: count }, (_, i) => ({
        stage: i,
        readMs: stageMs("R", i),
        createMs: stageMs("L", i) + stageMs("A", i),
        runMs: stageMs("E", i),
        // The whole plan's one session holds every stage's weights.
        weightBytes:
          model.plan === "whole"
            ? bundle.manifest.totalWeightBytes
            : (bundle.manifest.stages[i]?.weights.length ?? 0),
      })),
    };
    return { result, pipeline };
  } finally {
    await runtime.close();
  }
}

/** The example inputs of `target`; an example too large gets a hint to give inputs instead. */
function exampleInputs(
  specs: Parameters<typeof randomInputs>[0],
  seed: number,
  target: string,
): Record<string, HostTensor> {
  try {
    return randomInputs(specs, seed, target);
  } catch (e) {
    if (!isCicadaError(e, "E_INPUT_LIMIT")) throw e;
    throw new CicadaError("E_INPUT_LIMIT", `${e.message}; give smaller inputs with --inputs F.json`);
  }
}

/** One output's comparison with eager's. */
type OutputCheck = { name: string } & Similarity;

/** The outputs of `result` compared with eager on `reference`: every output of each must be in the other. */
async function checkAgainstEager(
  reference: string,
  strategy: string,
  feeds: Record<string, HostTensor>,
  result: ReferenceRun,
): Promise<{ reference: string; passed: boolean; outputs: OutputCheck[] }> {
  if (!existsSync(reference))
    throw new CicadaError(
      "E_USAGE",
      `run --check: reference model ${reference} does not exist (give --reference)`,
    );
  const eager = await runEager(reference, feeds);
  const missing = (from: Record<string, unknown>, of: Record<string, unknown>) =>
    Object.keys(of).filter((n) => !(n in from));
  const lacking = missing(result.outputs, eager.outputs);
  const extra = missing(eager.outputs, result.outputs);
  if (lacking.length || extra.length)
    throw new CicadaError(
      "E_OUTPUT_MISSING",
      `run --check: the ${strategy} run ${lacking.length ? `lacks the reference's output${lacking.length > 1 ? "s" : ""} ${lacking.map((n) => `'${n}'`).join(", ")}` : ""}${lacking.length && extra.length ? " and " : ""}${extra.length ? `has output${extra.length > 1 ? "s" : ""} ${extra.map((n) => `'${n}'`).join(", ")} that ${reference} does not` : ""}`,
    );
  const outputs = Object.entries(eager.outputs).map(([name, expected]) => ({
    name,
    ...compareTensors(result.outputs[name]!, expected, `run --check: output '${name}'`),
  }));
  return { reference, passed: outputs.every((c) => agrees(c, COSINE_THRESHOLD)), outputs };
}

export function registerRun(program: Command): void {
  program
    .command("run")
    .description("cold-start a bundle or an .onnx model and run it once")
    .argument("<target>", "bundle directory or model.onnx")
    .option(
      "--strategy <s>",
      `one of ${RUN_STRATEGIES.join(", ")} (sequential: the reference runner, one stage after another on this thread)`,
      "cicada",
    )
    .option(
      "--inputs <file>",
      "JSON inputs: { name: { dtype, dims, data } } (default: random example inputs)",
    )
    .option("--seed <n>", "seed of the random inputs", "0")
    .option("--check", "compare every output with eager on the original model")
    .option("--reference <model.onnx>", "original model for --check (default: the bundle's recorded source)")
    .option(
      "--outputs <file.json>",
      'write every output tensor as JSON in the --inputs format ({ name: { dtype, dims, data } }; NaN and infinities as the strings "NaN", "Infinity", "-Infinity"; int64/uint64 as decimal strings, exact beyond 2^53), written atomically',
    )
    .option(
      "--gantt <file.svg>",
      "write the Gantt chart of the cold start (rows L, R, A, E; colour per stage)",
    )
    .option(
      "--prepack",
      "ort-best, mini, cicada: let kernels prepack the mapped weights (faster warm runs of MatMul-heavy models, slower cold start)",
    )
    .option(
      "--plan <p>",
      "cicada: auto (MiniLoader's whole-model graph when it has one: models up to a quarter of memory; else the stages' pipeline), pipeline or whole",
      "auto",
    )
    .option(
      "--hazard <rule>",
      "preload, cicada's pipeline: strict (A_i after A_{i-1}, the paper's hazard rule) or relaxed (A_i after L_i and R_i only)",
      DEFAULTS.hazard,
    )
    .option(
      "--memory-budget-mb <n>",
      "anonymous memory the load may use, in MiB (default: the machine's or the cgroup's limit); a strategy that copies weights streams stage by stage or is refused (E_MEMORY_BUDGET)",
    )
    .option("--json", "machine-readable output (timings, output names and shapes; values: --outputs)")
    .action(async (target: string, opts: RunOptions) => {
      const strategy = choiceFlag("--strategy", opts.strategy, RUN_STRATEGIES);
      const plan = choiceFlag("--plan", opts.plan, ["auto", "pipeline", "whole"] as const);
      const hazard = choiceFlag("--hazard", opts.hazard, HAZARDS);
      const budgetMb = opts.memoryBudgetMb && intFlag("--memory-budget-mb", opts.memoryBudgetMb, 1);
      const seed = intFlag("--seed", opts.seed, 0, 2 ** 31 - 1);
      if (!isBundle(target) && !existsSync(target))
        throw new CicadaError("E_USAGE", `run: ${target} does not exist`);
      // A strategy that needs a bundle gets one: the model is imported into the cache (once).
      const bundleDir = isBundle(target)
        ? target
        : strategy === "eager"
          ? undefined
          : await ensureModelBundle(target, (phase, done, total) => {
              if (done === total) process.stderr.write(`run: ${phase} of ${target} into the cache done\n`);
            });
      const bundle = bundleDir ? await openBundle(bundleDir) : undefined;
      const reference = opts.reference ?? (bundle ? bundle.manifest.model.source : target);
      const inputSpecs = bundle ? bundle.manifest.inputs : graphInputsOf((await readOnnxFile(target)).model);
      const feeds: Record<string, HostTensor> = opts.inputs
        ? await readInputsFile(opts.inputs)
        : exampleInputs(inputSpecs, seed, target);
      validateInputs(inputSpecs, feeds, target);

      let result: ReferenceRun;
      let pipeline: PipelineFacts | undefined;
      if (strategy === "sequential") {
        result = await runSequential(bundle!, feeds);
      } else if (bundle) {
        ({ result, pipeline } = await runPipelined(bundle, strategy, feeds, opts.gantt, {
          prepack: opts.prepack ?? false,
          plan,
          hazard,
          ...(budgetMb ? { memoryBudgetBytes: budgetMb * 2 ** 20 } : {}),
        }));
      } else {
        result = await runEager(target, feeds);
      }

      const outputs = Object.entries(result.outputs).map(([name, t]) => ({
        name,
        dtype: t.dtype,
        dims: t.dims,
      }));
      if (opts.outputs) await writeFileAtomic(opts.outputs, tensorsToJson(result.outputs));
      const check = opts.check ? await checkAgainstEager(reference, strategy, feeds, result) : undefined;

      if (opts.json) {
        process.stdout.write(
          JSON.stringify(
            {
              target,
              strategy,
              totalMs: result.totalMs,
              createMs: result.createMs,
              runMs: result.runMs,
              stages: result.stages,
              pipeline,
              outputs,
              ...(opts.outputs ? { outputsFile: opts.outputs } : {}),
              check,
            },
            null,
            2,
          ) + "\n",
        );
      } else {
        if (result.stages.length) {
          process.stdout.write(stageTable(result.stages));
        }
        process.stdout.write(
          `${strategy}: load + first run ${result.totalMs.toFixed(1)} ms (load ${result.createMs.toFixed(1)} ms, run ${result.runMs.toFixed(1)} ms)\n`,
        );
        if (pipeline) {
          const units = UNITS.map(
            (u) =>
              `${u} work ${pipeline.units[u].workMs.toFixed(1)} / wait ${pipeline.units[u].waitMs.toFixed(1)} ms`,
          );
          process.stdout.write(
            `plan ${pipeline.plan}${pipeline.hazard ? ` (hazard ${pipeline.hazard})` : ""}${pipeline.storageReadBytes !== undefined ? `; read from storage ${(pipeline.storageReadBytes / 2 ** 20).toFixed(1)} MiB` : ""}; pipeline utilisation ${pipeline.utilization.toFixed(3)}; ${units.join("; ")}\n`,
          );
        }
        for (const o of outputs) process.stdout.write(`output ${o.name}: ${o.dtype} [${o.dims.join(",")}]\n`);
        for (const c of check?.outputs ?? [])
          process.stdout.write(`check ${c.name} vs eager: ${describeSimilarity(c)}\n`);
      }
      const failed = check?.outputs.filter((c) => !agrees(c, COSINE_THRESHOLD)) ?? [];
      if (failed.length) {
        const why = failed.map((c) =>
          c.nonFiniteMismatches
            ? `output '${c.name}': ${c.nonFiniteMismatches} non-finite position${c.nonFiniteMismatches === 1 ? " differs" : "s differ"} (NaN or Infinity in one, not the other)`
            : `output '${c.name}': cosine ${c.cosine.toFixed(7)} below ${COSINE_THRESHOLD}`,
        );
        throw new CicadaError("E_RUNTIME", `run --check: ${strategy} differs from eager: ${why.join("; ")}`);
      }
    });
}

// `cicada demo`: the main job end to end on a small zoo model — generate it (cached), import it into a
// bundle (cached), cold-start it with the cicada strategy, print each stage's timings and check it
// against eager.
import type { Command } from "commander";
import { ensureZooBundle } from "../../bench/model-cache.js";
import { openBundle } from "../../format/bundle.js";
import { agrees, compareTensors, describeSimilarity } from "../../metrics/similarity.js";
import { randomInputs } from "../../runtime/model-inputs.js";
import { runEager } from "../../runtime/reference-runner.js";
import { CicadaError } from "../../errors.js";
import { choiceFlag, intFlag } from "../flags.js";
import { formatBytes, stageTable } from "../format-table.js";
import { byteProgress, type Progress } from "../progress.js";
import { COSINE_THRESHOLD, runPipelined } from "./run.js";

/** The embedded default: the smallest model of the paper's evaluation. */
export const DEMO_MODEL = "resnet50";

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description(
      `generate, import and cold-start a zoo model with cicada (default ${DEMO_MODEL}), printing each stage's timings`,
    )
    .option("--model <name>", "zoo model", DEMO_MODEL)
    .option("--stages <n>", "number of stages of the bundle")
    .option("--plan <p>", "auto, pipeline or whole (see cicada run --plan)", "auto")
    .action(async (opts: { model: string; stages?: string; plan: string }) => {
      const stages = opts.stages !== undefined ? intFlag("--stages", opts.stages, 1) : undefined;
      const plan = choiceFlag("--plan", opts.plan, ["auto", "pipeline", "whole"] as const);
      const bars = new Map<string, Progress>();
      const { bundleDir, modelPath } = await ensureZooBundle(opts.model, {
        ...(stages !== undefined ? { stages } : {}),
        onProgress: (phase, done, total) => {
          let bar = bars.get(phase);
          if (!bar) bars.set(phase, (bar = byteProgress(phase)));
          bar.update(done, total);
        },
      });
      for (const bar of bars.values()) bar.stop();
      const bundle = await openBundle(bundleDir);
      process.stdout.write(
        `model ${modelPath}\nbundle ${bundleDir}: ${bundle.manifest.stages.length} stages, ${formatBytes(bundle.manifest.totalWeightBytes)}\n`,
      );
      const feeds = randomInputs(bundle.manifest.inputs, 0, bundleDir);
      const { result: run, pipeline } = await runPipelined(bundle, "cicada", feeds, undefined, { plan });
      process.stdout.write(stageTable(run.stages));
      process.stdout.write(
        `cicada cold start (load + first run): ${run.totalMs.toFixed(1)} ms, plan ${pipeline.plan}, pipeline utilisation ${pipeline.utilization.toFixed(3)}\n`,
      );
      if (pipeline.plan === "whole" && plan === "auto") {
        process.stdout.write(
          `(the weights were in the page cache, so there was nothing for a pipeline to overlap: one whole-model session; --plan pipeline runs the ${bundle.manifest.stages.length} stages)\n`,
        );
      }
      const eager = await runEager(modelPath, feeds);
      process.stdout.write(
        `eager cold start (InferenceSession.create + run): ${eager.totalMs.toFixed(1)} ms\n`,
      );
      for (const [name, expected] of Object.entries(eager.outputs)) {
        const actual = run.outputs[name];
        if (!actual)
          throw new CicadaError("E_OUTPUT_MISSING", `demo: the cicada run lacks eager's output '${name}'`);
        const s = compareTensors(actual, expected, `demo: output '${name}'`);
        process.stdout.write(`output ${name} vs eager: ${describeSimilarity(s)}\n`);
        if (!agrees(s, COSINE_THRESHOLD))
          throw new CicadaError(
            "E_RUNTIME",
            `demo: output '${name}' differs from eager: ${describeSimilarity(s)}`,
          );
      }
    });
}

// `cicada import <model.onnx> --out <bundle> [--stages N | --max-stage-mb M]`: ONNX model -> bundle.
import type { Command } from "commander";
import { CicadaError } from "../../errors.js";
import { existsSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { ensureSpace } from "../../format/fs-errors.js";
import { importModel } from "../../importer/import-model.js";
import { intFlag, positiveFlag } from "../flags.js";
import { formatBytes } from "../format-table.js";
import { byteProgress } from "../progress.js";

/** Bytes of `model` and of its usual external-data file (`model.onnx.data`); 0 for what does not exist. */
function modelBytes(model: string): number {
  const size = (p: string) => (existsSync(p) ? statSync(p).size : 0);
  return size(model) + size(`${model}.data`);
}

export function registerImport(program: Command): void {
  program
    .command("import")
    .description("split an ONNX model into a bundle of stages (structure graphs + one weights file)")
    .argument("<model>", "model.onnx (embedded or external data)")
    .requiredOption("--out <dir>", "bundle directory to create (must not exist)")
    .option("--stages <n>", "number of stages")
    .option("--max-stage-mb <m>", "largest stage, in MiB of weights (fewest stages that fit)")
    .option("--name <name>", "model name recorded in the manifest")
    .option("--json", "machine-readable output")
    .action(
      async (
        model: string,
        opts: { out: string; stages?: string; maxStageMb?: string; name?: string; json?: boolean },
      ) => {
        if (opts.stages !== undefined && opts.maxStageMb !== undefined) {
          throw new CicadaError("E_USAGE", "import: give --stages or --max-stage-mb, not both");
        }
        const stages = opts.stages !== undefined ? intFlag("--stages", opts.stages, 1) : undefined;
        const maxStageBytes =
          opts.maxStageMb !== undefined
            ? Math.floor(positiveFlag("--max-stage-mb", opts.maxStageMb) * 1024 * 1024)
            : undefined;
        // The bundle holds the model's weights once more (and its graph): refused before any of it is written
        // when the disk cannot hold that much.
        await ensureSpace(
          dirname(resolve(opts.out)),
          modelBytes(model),
          `import of ${model} (--out ${opts.out})`,
        );
        const progress = byteProgress("importing", opts.json);
        const result = await importModel(model, opts.out, {
          ...(stages !== undefined ? { stages } : {}),
          ...(maxStageBytes !== undefined ? { maxStageBytes } : {}),
          ...(opts.name ? { name: opts.name } : {}),
          onProgress: (_phase, done, total) => progress.update(done, total),
        });
        progress.stop();
        const { manifest } = result;
        if (opts.json) {
          process.stdout.write(
            JSON.stringify(
              {
                bundle: opts.out,
                stages: manifest.stages.length,
                totalWeightBytes: manifest.totalWeightBytes,
                durationMs: result.durationMs,
                duplicatedBytes: result.duplicatedBytes,
              },
              null,
              2,
            ) + "\n",
          );
          return;
        }
        const largest = Math.max(...manifest.stages.map((s) => s.weights.length));
        process.stdout.write(
          `imported ${model} -> ${opts.out}: ${manifest.stages.length} stages, ${formatBytes(manifest.totalWeightBytes)} of weights (largest stage ${formatBytes(largest)}) in ${(result.durationMs / 1000).toFixed(1)} s\n`,
        );
        if (result.duplicatedBytes > 0) {
          process.stdout.write(
            `shared weights duplicated across stages: ${formatBytes(result.duplicatedBytes)}\n`,
          );
        }
      },
    );
}

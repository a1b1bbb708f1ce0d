// `cicada zoo list` and `cicada zoo <name> --out <dir> [--seed N]`: the generated model zoo.
import type { Command } from "commander";
import { CicadaError } from "../../errors.js";
import { dirname, resolve } from "node:path";
import { ensureSpace } from "../../format/fs-errors.js";
import { findZooModel, generateZooModel, ZOO } from "../../zoo/registry.js";
import { intFlag } from "../flags.js";
import { byteProgress } from "../progress.js";
import { formatBytes } from "../format-table.js";

export function registerZoo(program: Command): void {
  program
    .command("zoo")
    .description("list the zoo (`zoo list`) or write one model as model.onnx + external data")
    .argument("<name>", "`list`, or a zoo model name")
    .option("--out <dir>", "output directory (must not exist)")
    .option("--seed <n>", "seed of the random weights", "0")
    .option("--json", "machine-readable output")
    .action(async (name: string, opts: { out?: string; seed: string; json?: boolean }) => {
      if (name === "list") {
        const rows = ZOO.map((m) => {
          const g = m.build();
          return {
            name: m.name,
            family: m.family,
            parameters: g.parameterCount(),
            weightBytes: g.weightBytes(),
            description: m.description,
          };
        });
        if (opts.json) {
          process.stdout.write(JSON.stringify(rows, null, 2) + "\n");
          return;
        }
        for (const r of rows) {
          process.stdout.write(
            `${r.name.padEnd(14)} ${r.family.padEnd(7)} ${(r.parameters / 1e6).toFixed(2).padStart(9)} M params ${formatBytes(r.weightBytes).padStart(10)}  ${r.description}\n`,
          );
        }
        return;
      }
      if (!opts.out) throw new CicadaError("E_USAGE", "zoo: --out <dir> is required to write a model");
      const seed = intFlag("--seed", opts.seed, 0, 2 ** 31 - 1);
      // A model that cannot fit is refused before any of it is written (the weights are most of it).
      const weightBytes = findZooModel(name).build().weightBytes();
      await ensureSpace(dirname(resolve(opts.out)), weightBytes, `zoo ${name} (--out ${opts.out})`);
      const progress = byteProgress(`generating ${name}`, opts.json);
      const started = performance.now();
      const written = await generateZooModel(name, opts.out, {
        seed,
        onProgress: (d, t) => progress.update(d, t),
      });
      progress.stop();
      const seconds = (performance.now() - started) / 1000;
      if (opts.json)
        process.stdout.write(JSON.stringify({ name, seed, ...written, seconds }, null, 2) + "\n");
      else
        process.stdout.write(
          `wrote ${written.modelPath} (${(written.parameterCount / 1e6).toFixed(2)} M parameters, ${formatBytes(written.weightBytes)}) in ${seconds.toFixed(1)} s\n`,
        );
    });
}

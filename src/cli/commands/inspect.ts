// `cicada inspect <bundle> [--json]`: what a bundle holds, stage by stage.
import type { Command } from "commander";
import { openBundle } from "../../format/bundle.js";
import { formatBytes, table } from "../format-table.js";

function topOps(opCounts: Record<string, number>, n = 4): string {
  return Object.entries(opCounts)
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([op, c]) => `${op}×${c}`)
    .join(" ");
}

export function registerInspect(program: Command): void {
  program
    .command("inspect")
    .description("print a bundle's stages (weights, inputs, outputs, op counts)")
    .argument("<bundle>", "bundle directory")
    .option("--json", "machine-readable output")
    .action(async (dir: string, opts: { json?: boolean }) => {
      const { manifest } = await openBundle(dir);
      const stages = manifest.stages.map((s) => ({
        index: s.index,
        file: s.file,
        weightBytes: s.weights.length,
        checksum: s.weights.checksum,
        inputs: s.inputs.map((i) => i.name),
        outputs: s.outputs.map((o) => o.name),
        nodeCount: s.nodeCount,
        opCounts: s.opCounts,
      }));
      if (opts.json) {
        process.stdout.write(
          JSON.stringify(
            {
              model: manifest.model,
              inputs: manifest.inputs,
              outputs: manifest.outputs,
              totalWeightBytes: manifest.totalWeightBytes,
              stages,
            },
            null,
            2,
          ) + "\n",
        );
        return;
      }
      process.stdout.write(
        `${manifest.model.name} (${manifest.model.family ?? "no family"}), ${manifest.stages.length} stages, ${formatBytes(manifest.totalWeightBytes)} of weights\n`,
      );
      process.stdout.write(
        table(
          ["stage", "weights", "nodes", "inputs", "outputs", "ops"],
          stages.map((s) => [
            s.index,
            formatBytes(s.weightBytes),
            s.nodeCount,
            s.inputs.join(","),
            s.outputs.join(","),
            topOps(s.opCounts),
          ]),
        ),
      );
    });
}

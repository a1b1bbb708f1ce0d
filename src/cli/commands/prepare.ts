// `cicada prepare BUNDLE… [--strategies S,…]`: deploy-time preparation. Builds (and verifies) every cached
// form the strategies need (MiniLoader's optimised graphs for cicada and mini, PISeL's stage files,
// ort-best's model) so that no request pays for it; a Dockerfile runs it at image build. An entry built
// for another CPU, onnxruntime version or bundle has another key: it is rebuilt here, never trusted.
import type { Command } from "commander";
import { openBundle } from "../../format/bundle.js";
import { prepareModel, filesRead } from "../../runtime/load-model.js";
import { createRuntime } from "../../runtime/runtime.js";
import { STRATEGIES, type StrategyName } from "../../config.js";
import { parseStrategies } from "../flags.js";
import { formatBytes, table } from "../format-table.js";
import { statSync } from "node:fs";

function bytesOf(files: string[]): number {
  return files.reduce((n, f) => n + statSync(f).size, 0);
}

export function registerPrepare(program: Command): void {
  program
    .command("prepare")
    .description("build every cached form the strategies need (deploy time), so that no request pays for it")
    .argument("<bundles...>", "bundle directories")
    .option("--strategies <list>", `comma-separated: ${STRATEGIES.join(", ")}`, "cicada")
    .option("--cache-root <dir>", "cache root (default $CICADA_CACHE or ~/.cache/cicada)")
    .option("--json", "machine-readable output")
    .action(async (bundles: string[], opts: { strategies: string; cacheRoot?: string; json?: boolean }) => {
      const strategies = parseStrategies(opts.strategies);
      // Every bundle is opened (and so validated) before anything is built.
      for (const dir of bundles) await openBundle(dir);
      const runtime = await createRuntime(opts.cacheRoot ? { cacheRoot: opts.cacheRoot } : {});
      const rows: { bundle: string; strategy: StrategyName; ms: number; files: number; bytes: number }[] = [];
      try {
        for (const dir of bundles) {
          for (const strategy of strategies) {
            const t0 = performance.now();
            await prepareModel(runtime, dir, strategy);
            const files = await filesRead(runtime, dir, strategy);
            const row = {
              bundle: dir,
              strategy,
              ms: performance.now() - t0,
              files: files.length,
              bytes: bytesOf(files),
            };
            rows.push(row);
            if (!opts.json)
              process.stderr.write(
                `prepare: ${dir} ${strategy}: ${row.ms.toFixed(0)} ms, ${formatBytes(row.bytes)}\n`,
              );
          }
        }
      } finally {
        await runtime.close();
      }
      if (opts.json) {
        process.stdout.write(
          JSON.stringify({ cacheRoot: runtime.cacheRoot, prepared: rows }, null, 2) + "\n",
        );
        return;
      }
      process.stdout.write(
        table(
          ["bundle", "strategy", "ms", "files read by a cold start", "bytes"],
          rows.map((r) => [r.bundle, r.strategy, r.ms.toFixed(0), r.files, formatBytes(r.bytes)]),
        ),
      );
    });
}

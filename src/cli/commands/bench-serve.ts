// `cicada bench-serve`: cold and warm inference latency over HTTP against `cicada serve` processes, per
// strategy, next to the same work in-process (src/bench/serve-latency.ts). Progress on stderr; a table or
// JSON on stdout; with --out the JSON (with every sample) written atomically.
import type { Command } from "commander";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ensureZooBundle } from "../../bench/model-cache.js";
import { measureServeLatency, type ServeLatencySummary } from "../../bench/serve-latency.js";
import type { Summary } from "../../metrics/stats.js";
import { CicadaError } from "../../errors.js";
import { writeFileAtomic } from "../../format/atomic-output.js";
import { MANIFEST_FILE } from "../../format/manifest.js";
import { findZooModel } from "../../zoo/registry.js";
import { intFlag, parseStrategies } from "../flags.js";
import { formatBytes, table } from "../format-table.js";

interface Flags {
  model: string;
  strategies: string;
  repeat: string;
  warm: string;
  seed: string;
  json?: boolean;
  out?: string;
}

const ms = (s: Summary) => `${s.median.toFixed(1)} (${s.p10.toFixed(1)}-${s.p90.toFixed(1)})`;

/** The human-readable table of one model. */
export function formatServeLatency(s: ServeLatencySummary): string {
  const m = s.machine;
  const eager = s.results.find((r) => r.strategy === "eager");
  const head = [
    `${s.model}: ${s.stages} stages, ${formatBytes(s.weightBytes)} of weights; ${s.repeat} rounds (+1 warm-up), ${s.warm} warm requests per encoding per round; HTTP answers vs eager: cosine >= ${s.minCosineVsEager.toFixed(7)}`,
    `machine: ${m.cpuModel}, ${m.cores} cores, onnxruntime ${m.ortVersion}, node ${m.nodeVersion}, load ${m.loadAverage1m.toFixed(2)}`,
    "median ms (p10-p90); fresh = first request of a new instance process, reload = after an unload",
    "",
  ].join("\n");
  const rows = s.results.map((r) => [
    r.strategy,
    ms(r.kinds["fresh-cold"]),
    ms(r.kinds["reload-cold"]),
    ms(r.kinds["inproc-cold"]),
    ms(r.kinds["warm-binary"]),
    ms(r.kinds["warm-json"]),
    ms(r.kinds["inproc-warm"]),
    r.httpOverheadWarmMs.toFixed(2),
    r.wireWarmMs.toFixed(2),
    eager ? `${(eager.kinds["fresh-cold"].median / r.kinds["fresh-cold"].median).toFixed(2)}x` : "-",
  ]);
  return (
    head +
    table(
      [
        "strategy",
        "HTTP cold fresh",
        "HTTP cold reload",
        "in-proc cold",
        "HTTP warm bin",
        "HTTP warm JSON",
        "in-proc warm",
        "HTTP overhead warm",
        "wire",
        "eager/x fresh",
      ],
      rows,
    )
  );
}

export function registerBenchServe(program: Command): void {
  program
    .command("bench-serve")
    .description("cold and warm inference latency over HTTP (cicada serve) per strategy, vs in-process")
    .requiredOption(
      "--model <name|bundle>",
      "zoo model name (generated and imported if needed) or bundle directory",
    )
    .option("--strategies <list>", "comma-separated strategies", "eager,cicada")
    .option("--repeat <n>", "counted rounds (one warm-up round runs first)", "5")
    .option("--warm <n>", "warm requests per encoding per round", "10")
    .option("--seed <n>", "seed of the random inputs", "0")
    .option("--json", "machine-readable output (every sample)")
    .option("--out <file.json>", "write the JSON result there")
    .action(async (flags: Flags) => {
      const strategies = parseStrategies(flags.strategies);
      const repeat = intFlag("--repeat", flags.repeat, 1, 1000);
      const warm = intFlag("--warm", flags.warm, 1, 10_000);
      const seed = intFlag("--seed", flags.seed, 0, 2 ** 31 - 1);
      if (flags.out && existsSync(flags.out)) {
        throw new CicadaError("E_OUTPUT_EXISTS", `--out ${flags.out} exists already`);
      }
      const log = (line: string) => process.stderr.write(`bench-serve: ${line}\n`);
      let bundleDir = flags.model;
      if (!existsSync(join(flags.model, MANIFEST_FILE))) {
        if (flags.model.includes("/"))
          throw new CicadaError("E_USAGE", `--model ${flags.model} is not a bundle`);
        findZooModel(flags.model);
        log(`preparing zoo model ${flags.model} (generated and imported on first use)`);
        bundleDir = (await ensureZooBundle(flags.model)).bundleDir;
      }
      const summary = await measureServeLatency({
        bundleDir,
        strategies,
        repeat,
        warm,
        seed,
        onProgress: log,
      });
      const json = JSON.stringify(summary, null, 2) + "\n";
      if (flags.out) await writeFileAtomic(flags.out, json);
      process.stdout.write(flags.json ? json : formatServeLatency(summary));
    });
}

// `cicada bench`: the cold-start comparison of the strategies (src/bench/cold-start.ts) on zoo models or
// bundles. Every flag, model and the output directory are checked before any work starts; progress goes to
// stderr, results to stdout (a table, or JSON), and with --out the JSON plus every cold start's raw data.
import type { Command } from "commander";
import { existsSync, statSync } from "node:fs";
import { access, mkdir, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { constants } from "node:fs";
import { benchModels } from "../../bench/cold-start.js";
import {
  CACHE_STATES,
  SCENARIOS,
  type BenchSummary,
  type BenchTarget,
} from "../../bench/cold-start-types.js";
import { ensureZooBundle } from "../../bench/model-cache.js";
import { benchProcesses, type ProcessBenchSummary } from "../../bench/process-bench.js";
import { CicadaError } from "../../errors.js";
import { stageOutputDir, type StagingDir } from "../../format/atomic-output.js";
import { openBundle } from "../../format/bundle.js";
import { MANIFEST_FILE } from "../../format/manifest.js";
import { UNITS } from "../../metrics/trace.js";
import { DEFAULTS, HAZARDS, STRATEGIES, type StrategyName } from "../../config.js";
import { writeBenchReport } from "../../report/bench-report.js";
import { findZooModel } from "../../zoo/registry.js";
import { choiceFlag, intFlag, listFlag, parseStrategies } from "../flags.js";
import { processChart } from "../../report/process-chart.js";
import { formatBytes, table } from "../format-table.js";
import { COSINE_THRESHOLD } from "./run.js";

interface BenchFlags {
  model: string;
  strategies: string;
  repeat: string;
  scenario: string;
  cache: string;
  seed: string;
  plan: string;
  hazard: string;
  memoryBudgetMb?: string;
  json?: boolean;
  out?: string;
}

/** A model named on the command line: a bundle directory (validated now) or a zoo name (imported later). */
type ModelSpec = { kind: "bundle"; target: BenchTarget } | { kind: "zoo"; name: string };

/**
 * Checks one --model item without generating anything: E_ZOO_UNKNOWN, E_USAGE or the bundle's own error.
 * A bundle whose original model is gone is measured by the strategies that do not read it (the outputs are
 * then checked against the sequential reference runner).
 */
async function checkModel(spec: string, strategies: readonly StrategyName[]): Promise<ModelSpec> {
  if (existsSync(spec)) {
    if (!statSync(spec).isDirectory() || !existsSync(join(spec, MANIFEST_FILE))) {
      throw new CicadaError(
        "E_USAGE",
        `--model ${spec} is not a bundle directory (no ${MANIFEST_FILE}); import it first with cicada import`,
      );
    }
    const bundle = await openBundle(spec);
    const source = bundle.manifest.model.source;
    const readers = strategies.filter((s) => s === "eager" || s === "ort-best");
    if (!existsSync(source) && readers.length) {
      throw new CicadaError(
        "E_BUNDLE_FILE",
        `${spec}: the original model ${source} does not exist; ${readers.join(" and ")} ${readers.length > 1 ? "read" : "reads"} it (leave them out to check against the sequential reference runner)`,
      );
    }
    return { kind: "bundle", target: { name: bundle.manifest.model.name, bundleDir: resolve(spec) } };
  }
  if (spec.includes("/") || spec.startsWith(".")) {
    throw new CicadaError("E_USAGE", `--model ${spec} does not exist`);
  }
  findZooModel(spec);
  return { kind: "zoo", name: spec };
}

/** Refuses an --out that exists or cannot be created, before any work. */
async function checkOut(out: string): Promise<StagingDir> {
  let dir = dirname(resolve(out));
  while (!existsSync(dir)) dir = dirname(dir);
  try {
    await access(dir, constants.W_OK);
  } catch {
    throw new CicadaError("E_USAGE", `--out ${out}: cannot write into ${dir}`);
  }
  return stageOutputDir(out);
}

const gb = (bytesPerS: number) =>
  bytesPerS >= 1e8 ? `${(bytesPerS / 1e9).toFixed(2)} GB/s` : `${(bytesPerS / 1e6).toFixed(1)} MB/s`;
const ratio = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}x` : "-");

/** The human-readable report of one model. */
export function formatSummary(s: BenchSummary): string {
  const m = s.machine;
  const latency = (name: StrategyName) => s.results.find((r) => r.strategy === name)?.latencyMedianMs ?? NaN;
  const lines = [
    `${s.model}: scenario ${s.scenario}, cache ${s.cache}, ${s.repeat} counted round${s.repeat === 1 ? "" : "s"} (+1 warm-up), ${s.stages} stages, ${formatBytes(s.weightBytes)} of weights`,
    `machine: ${m.cpuModel}, ${m.cores} cores (${m.cpuFeatures.join(" ") || "no vector flags"}), ${formatBytes(m.totalMemoryBytes)}, onnxruntime ${m.ortVersion}, node ${m.nodeVersion}, load ${m.loadAverage1m.toFixed(2)}`,
    `floor (warm run of ${s.floorStrategy ?? "eager"}): ${s.warmRunMedianMs.toFixed(1)} ms; outputs checked against ${s.referenceRunner ?? "eager"}; disk ${gb(s.diskBandwidthBytesPerS)} (${s.diskBandwidthMethod})`,
  ];
  if (s.eviction) {
    const e = s.eviction;
    lines.push(
      `eviction check: ${e.checks} probes, median ${gb(e.coldProbeMedianBytesPerS)} after eviction vs ${gb(e.warmProbeMedianBytesPerS)} cached, ${e.failed} not evicted`,
    );
  }
  const out = [lines.join("\n"), ""];
  out.push(
    table(
      [
        "strategy",
        "median ms",
        "p10",
        "p90",
        "eager/x",
        "ort-best/x",
        "pisel/x",
        "x/floor",
        "util",
        "peak RSS",
        "RssAnon",
        "minflt",
        "cos min",
      ],
      s.results.map((r) => [
        r.strategy,
        r.latencyMedianMs.toFixed(1),
        r.latencyP10Ms.toFixed(1),
        r.latencyP90Ms.toFixed(1),
        ratio(latency("eager") / r.latencyMedianMs),
        ratio(latency("ort-best") / r.latencyMedianMs),
        ratio(latency("pisel") / r.latencyMedianMs),
        ratio(r.latencyMedianMs / s.warmRunMedianMs),
        r.utilization.toFixed(3),
        formatBytes(r.peakRssBytes),
        formatBytes(r.peakRssAnonBytes),
        formatBytes(r.minorFaults * 4096),
        `${r.cosineMin.toFixed(6)}${r.cosineMin >= COSINE_THRESHOLD ? "" : " !"}`,
      ]),
    ),
  );
  out.push(
    "eager/x, ort-best/x, pisel/x: speed-up (their median latency / this one's); x/floor: median latency / warm run of eager; minflt: minor faults x 4 KiB\n",
  );
  if (s.memoryBudgetBytes) out.push(`memory budget ${formatBytes(s.memoryBudgetBytes)} per cold start\n`);
  for (const r of s.refused ?? []) out.push(`${r.strategy}: refused (${r.message})\n`);
  out.push(
    table(
      ["strategy", ...UNITS.map((u) => `${u} work/wait ms`)],
      s.results.map((r) => [
        r.strategy,
        ...UNITS.map((u) => `${r.units[u].workMs.toFixed(1)} / ${r.units[u].waitMs.toFixed(1)}`),
      ]),
    ),
  );
  return out.join("\n");
}

/** The human-readable report of one model's process scenario. */
export function formatProcessSummary(s: ProcessBenchSummary): string {
  const m = s.machine;
  const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "-");
  const head = [
    `${s.model}: scenario process (a new node process per cold start: import, load, first request, output, exit), cache ${s.cache}, ${s.repeat} counted round${s.repeat === 1 ? "" : "s"} (+1 warm-up), ${formatBytes(s.weightBytes)} of weights`,
    `machine: ${m.cpuModel}, ${m.cores} cores, ${formatBytes(m.totalMemoryBytes)}, onnxruntime ${m.ortVersion}, node ${m.nodeVersion}, load ${m.loadAverage1m.toFixed(2)}`,
    "",
  ];
  const spread = table(
    ["contestant", "handler", "first output ms", "p10", "p90", "exit ms", "x/eager", "x/ort-best", "cos min"],
    s.results.map((r) => [
      r.handler === "cicada" ? `${r.contestant} (cicada-node)` : `${r.contestant} (plain onnxruntime)`,
      r.handler,
      ms(r.firstOutput.median),
      ms(r.firstOutput.p10),
      ms(r.firstOutput.p90),
      ms(r.exit.median),
      ratio(r.ratioToEager),
      ratio(r.ratioToOrtBest),
      `${r.cosineMin.toFixed(6)}${r.cosineMin >= COSINE_THRESHOLD ? "" : " !"}`,
    ]),
  );
  const parts = table(
    ["contestant", "node start", "inputs", "import", "runtime", "load", "first run", "write", "exit"],
    s.results.map((r) => {
      const b = r.breakdown;
      return [
        r.contestant,
        ...[b.nodeStart, b.inputs, b.import, b.runtimeStart, b.load, b.firstRun, b.write, b.exit].map(ms),
      ];
    }),
  );
  return [
    ...head,
    spread,
    "x/eager, x/ort-best: median over rounds of this contestant's first output / the other's in the same round (below 1: faster)\n",
    parts,
    "median ms of each part: spawn -> handler's first line, reading the inputs, importing the runtime, createRuntime, loadModel or InferenceSession.create, the first run, writing the outputs, output -> exit\n",
  ].join("\n");
}

function fileNameOf(model: string): string {
  return model.replace(/[^\w.-]+/g, "_");
}

/** Writes bench.json (what --json prints) and raw/<model>.json (every cold start) into `dir`. */
async function writeResults(dir: string, json: unknown, raws: { model: string }[]): Promise<void> {
  await writeFile(join(dir, "bench.json"), JSON.stringify(json, null, 2) + "\n");
  await mkdir(join(dir, "raw"));
  const used = new Set<string>();
  for (const raw of raws) {
    let name = fileNameOf(raw.model);
    for (let i = 2; used.has(name); i++) name = `${fileNameOf(raw.model)}-${i}`;
    used.add(name);
    await writeFile(join(dir, "raw", `${name}.json`), JSON.stringify(raw) + "\n");
  }
}

/** Registers `cicada bench`. */
export function registerBench(program: Command): void {
  program
    .command("bench")
    .description("compare the cold start of the strategies side by side (interleaved, repeated)")
    .requiredOption("--model <names>", "zoo model names or bundle directories, comma-separated")
    .option("--strategies <list>", `comma-separated, from ${STRATEGIES.join(", ")}`, STRATEGIES.join(","))
    .option("--repeat <n>", "counted rounds per strategy (after one warm-up round)", "5")
    .option(
      "--scenario <s>",
      "reload: one warm instance per strategy, a cold start per request; fresh: a new instance process per cold start, its runtime started first; process: a new node process per cold start running a handler file (import, load, first request, exit), eager and ort-best as plain onnxruntime-node scripts",
      "reload",
    )
    .option(
      "--cache <c>",
      "warm: weights in the page cache; cold: the files a strategy reads evicted before each cold start",
      "warm",
    )
    .option("--seed <n>", "seed of the random example inputs", "0")
    .option(
      "--plan <p>",
      "cicada's plan: auto (whole model when MiniLoader has its graph), pipeline (the bundle's stages) or whole",
      "auto",
    )
    .option(
      "--hazard <rule>",
      "the pipelines' hazard rule: strict (A_i after A_{i-1}) or relaxed (A_i after L_i and R_i)",
      DEFAULTS.hazard,
    )
    .option(
      "--memory-budget-mb <n>",
      "fresh and reload scenarios: every cold start's memory budget in MiB; strategies refused under it are reported as refused",
    )
    .option("--json", "print the results as JSON (an array when several models)")
    .option(
      "--out <dir>",
      "write bench.json and the raw data of every cold start (traces, memory series) into a new directory",
    )
    .action(async (flags: BenchFlags) => {
      const strategies = parseStrategies(flags.strategies);
      const repeat = intFlag("--repeat", flags.repeat, 1, 1000);
      const scenario = choiceFlag("--scenario", flags.scenario, [...SCENARIOS, "process"] as const);
      const cache = choiceFlag("--cache", flags.cache, CACHE_STATES);
      const seed = intFlag("--seed", flags.seed, 0, 2 ** 31 - 1);
      const plan = choiceFlag("--plan", flags.plan, ["auto", "pipeline", "whole"] as const);
      const hazard = choiceFlag("--hazard", flags.hazard, HAZARDS);
      const budgetMb = flags.memoryBudgetMb && intFlag("--memory-budget-mb", flags.memoryBudgetMb, 1);
      if (budgetMb && scenario === "process") {
        throw new CicadaError(
          "E_USAGE",
          "bench: --memory-budget-mb applies to the fresh and reload scenarios (their instances sample memory)",
        );
      }
      const specs: ModelSpec[] = [];
      for (const m of listFlag("--model", flags.model)) specs.push(await checkModel(m, strategies));
      const staging = flags.out ? await checkOut(flags.out) : undefined;
      let reportError: unknown;
      try {
        const say = (line: string) => process.stderr.write(`bench: ${line}\n`);
        const targets: BenchTarget[] = [];
        for (const spec of specs) {
          if (spec.kind === "bundle") {
            targets.push(spec.target);
            continue;
          }
          let phase = "";
          const { bundleDir } = await ensureZooBundle(spec.name, {
            onProgress: (p) => {
              if (p !== phase) say(`${spec.name}: ${(phase = p)}`);
            },
          });
          targets.push({ name: spec.name, bundleDir });
        }
        if (scenario === "process") {
          const { summaries, raws } = await benchProcesses(targets, {
            strategies,
            repeat,
            cache,
            seed,
            plan,
            onProgress: say,
          });
          const json = summaries.length === 1 ? summaries[0] : summaries;
          if (flags.json) process.stdout.write(JSON.stringify(json, null, 2) + "\n");
          else process.stdout.write(summaries.map(formatProcessSummary).join("\n"));
          if (staging) {
            await writeResults(staging.path, json, raws);
            await writeFile(join(staging.path, "process.svg"), processChart(summaries));
            await staging.commit();
            say(`wrote ${staging.destination} (bench.json, raw/, process.svg)`);
          }
          const wrong = summaries.flatMap((s) =>
            s.results
              .filter((r) => !(r.cosineMin >= COSINE_THRESHOLD))
              .map((r) => `${s.model}/${r.contestant} (${r.cosineMin})`),
          );
          if (wrong.length) {
            throw new CicadaError(
              "E_RUNTIME",
              `bench: outputs differ from eager (cosine below ${COSINE_THRESHOLD}): ${wrong.join(", ")}`,
            );
          }
          return;
        }
        const { summaries, raws } = await benchModels(targets, {
          strategies,
          repeat,
          scenario,
          cache,
          seed,
          plan,
          hazard,
          ...(budgetMb ? { memoryBudgetBytes: budgetMb * 2 ** 20 } : {}),
          onProgress: say,
        });
        const json = summaries.length === 1 ? summaries[0] : summaries;
        if (flags.json) process.stdout.write(JSON.stringify(json, null, 2) + "\n");
        else process.stdout.write(summaries.map(formatSummary).join("\n"));
        if (staging) {
          await writeResults(staging.path, json, raws);
          // A report that fails must not cost the measurements: they are kept, and the error follows.
          reportError = await writeBenchReport(staging.path, {
            runs: summaries.map((summary, i) => ({ summary, raw: raws[i] })),
            command: `cicada ${process.argv.slice(2).join(" ")}`,
          }).then(
            () => undefined,
            (e: unknown) => e,
          );
          await staging.commit();
          say(`wrote ${staging.destination}`);
        }
        const wrong = summaries.flatMap((s) =>
          s.results
            .filter((r) => !(r.cosineMin >= COSINE_THRESHOLD))
            .map((r) => `${s.model}/${r.strategy} (${r.cosineMin})`),
        );
        if (wrong.length) {
          throw new CicadaError(
            "E_RUNTIME",
            `bench: outputs differ from eager (cosine below ${COSINE_THRESHOLD}): ${wrong.join(", ")}`,
          );
        }
        if (reportError !== undefined) {
          throw new CicadaError(
            "E_RUNTIME",
            `bench: the results are in ${flags.out}, but its report could not be written (${(reportError as Error).message}); retry with: cicada report ${flags.out}`,
          );
        }
      } catch (e) {
        await staging?.abort();
        throw e;
      }
    });
}

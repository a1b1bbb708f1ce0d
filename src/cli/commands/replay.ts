// `cicada replay`: replays an invocation trace (an Azure Functions 2021 or 2019 file, or the built-in
// synthetic workload) open loop against a platform, once per policy × strategy, and reports latency
// percentiles, cold starts and memory over time: a table on stdout (or --json), progress on stderr, and with
// --out a directory with replay.json, the raw records, report.md and SVG figures.
import type { Command } from "commander";
import { CicadaError } from "../../errors.js";
import { stageOutputDir } from "../../format/atomic-output.js";
import { readReplayResult } from "../../report/replay-data.js";
import { replaySummaryJson, replayTable, writeReplayReport } from "../../report/replay-report.js";
import { isStrategy, STRATEGIES, type StrategyName } from "../../config.js";
import { runReplays } from "../../serve/platform/replay-experiment.js";
import { isPolicy, POLICIES, type PolicyName, type RunSpec } from "../../workload/replay-runs.js";
import { readAzureTrace } from "../../workload/trace-azure.js";
import { arrivalsOf, cutTrace, topFunctions, traceStats } from "../../workload/trace-invocations.js";
import { syntheticTrace } from "../../workload/trace-synthetic.js";
import { intFlag, positiveFlag } from "../flags.js";
import {
  listOf,
  parsePlatformFlags,
  platformOptions,
  resolveModels,
  type PlatformFlags,
} from "./platform.js";

interface Flags extends PlatformFlags {
  trace?: string;
  synthetic?: boolean;
  minutes?: string;
  timeScale: string;
  seed: string;
  functions?: string;
  policy: string;
  strategy: string;
  runs?: string;
  maxInvocations: string;
  maxWallS: string;
  verbose?: boolean;
  json?: boolean;
  reportFrom?: string;
  out?: string;
}

function policyOf(flag: string, p: string): PolicyName {
  if (!isPolicy(p))
    throw new CicadaError("E_USAGE", `${flag}: unknown policy '${p}'; known: ${POLICIES.join(", ")}`);
  return p;
}

function strategyOf(flag: string, s: string): StrategyName {
  if (!isStrategy(s))
    throw new CicadaError("E_USAGE", `${flag}: unknown strategy '${s}'; known: ${STRATEGIES.join(", ")}`);
  return s;
}

/** The runs: --runs p:s,… as given, else every --policy × --strategy. */
export function parseRuns(f: { policy: string; strategy: string; runs?: string }): RunSpec[] {
  if (f.runs !== undefined) {
    return listOf("--runs", f.runs).map((item) => {
      const [p, s, extra] = item.split(":");
      if (!p || !s || extra !== undefined)
        throw new CicadaError("E_USAGE", `--runs items are policy:strategy, found '${item}'`);
      return { policy: policyOf("--runs", p), strategy: strategyOf("--runs", s) };
    });
  }
  const policies = listOf("--policy", f.policy).map((p) => policyOf("--policy", p));
  const strategies = listOf("--strategy", f.strategy).map((s) => strategyOf("--strategy", s));
  return policies.flatMap((policy) => strategies.map((strategy) => ({ policy, strategy })));
}

const say = (line: string) => process.stderr.write(`cicada replay: ${line}\n`);

/** --report-from: the report of the replay in `from`, summaries computed again from its raw data, into `out`. */
async function reportAgain(from: string, out: string | undefined): Promise<void> {
  if (out === undefined)
    throw new CicadaError("E_USAGE", "--report-from needs --out <dir> for the new report");
  await stageOutputDir(out).then((s) => s.abort());
  const { result, command } = await readReplayResult(from);
  const note = `Drawn again from the raw data of ${from} (\`cicada replay --report-from\`), with the summaries computed again.`;
  await writeReplayReport(result, out, command, note);
  process.stdout.write(replayTable(result));
  say(`wrote ${out}`);
}

/** Registers `cicada replay`. */
export function registerReplay(program: Command): void {
  platformOptions(
    program
      .command("replay")
      .description("replay an invocation trace open loop against the platform, per policy x strategy")
      .option(
        "--trace <file>",
        "an Azure Functions trace: 2021 (app,func,end_timestamp,duration) or 2019 per-minute counts",
      )
      .option("--synthetic", "the built-in workload: one hour, 2,426 invocations, per-minute bursts (seeded)")
      .option("--minutes <m>", "replay only the first M minutes of the trace")
      .option("--time-scale <x>", "compress time: 20 replays an hour in 3 minutes", "1")
      .option(
        "--seed <n>",
        "seed of the synthetic trace, of the function → model assignment, of the inputs",
        "0",
      )
      .option("--functions <n>", "keep only the N most invoked functions of the trace")
      .option("--policy <list>", `policies, comma-separated: ${POLICIES.join(", ")}`, "stateless")
      .option("--strategy <list>", `strategies, comma-separated: ${STRATEGIES.join(", ")}`, "cicada")
      .option("--runs <list>", "explicit policy:strategy pairs instead of --policy x --strategy")
      .option("--max-invocations <n>", "replay at most this many invocations (the earliest)", "5000")
      .option("--max-wall-s <s>", "stop sending after this many seconds of each run", "900")
      .option("--verbose", "pass the instances' stderr through")
      .option("--json", "print the summary as JSON")
      .option(
        "--report-from <dir>",
        "draw the report of a previous replay's --out again (with --out), replaying nothing",
      )
      .option(
        "--out <dir>",
        "write replay.json, raw records, report.md and SVG figures into a new directory",
      ),
  ).action(async (f: Flags) => {
    if (f.reportFrom !== undefined) return reportAgain(f.reportFrom, f.out);
    if (Boolean(f.trace) === Boolean(f.synthetic))
      throw new CicadaError("E_USAGE", "give exactly one of --trace <file> and --synthetic");
    const common = parsePlatformFlags(f);
    const runs = parseRuns(f);
    const timeScale = positiveFlag("--time-scale", f.timeScale);
    const seed = intFlag("--seed", f.seed, 0, 2 ** 31 - 1);
    const minutes = f.minutes !== undefined ? positiveFlag("--minutes", f.minutes) : undefined;
    const maxInvocations = intFlag("--max-invocations", f.maxInvocations, 1);
    const maxWallMs = positiveFlag("--max-wall-s", f.maxWallS) * 1000;
    const staging = f.out ? await stageOutputDir(f.out) : undefined;
    try {
      let trace = f.synthetic
        ? syntheticTrace({ seed, ...(minutes !== undefined ? { minutes } : {}) })
        : await readAzureTrace(f.trace!, { seed, ...(minutes !== undefined ? { minutes } : {}) });
      if (minutes !== undefined) trace = cutTrace(trace, minutes);
      if (f.functions !== undefined) trace = topFunctions(trace, intFlag("--functions", f.functions, 1));
      if (!trace.invocations.length)
        throw new CicadaError("E_USAGE", `the trace ${trace.source} has no invocation to replay`);
      const models = await resolveModels(f.models, say);
      const arrivals = arrivalsOf(trace, {
        models: models.map((m) => m.name),
        seed,
        timeScale,
        maxInvocations,
      });
      const stats = traceStats(trace);
      say(
        `${stats.source}: ${stats.invocations} invocations of ${stats.functions} functions over ${stats.minutes} min; replaying ${arrivals.length} at ${timeScale}x (${((arrivals.at(-1)?.t ?? 0) / 1000).toFixed(0)} s per run) for ${runs.length} run(s)`,
      );
      const result = await runReplays(
        { ...common, trace: stats, arrivals, timeScale, models, runs, maxWallMs, seed },
        { progress: say, ...(f.verbose ? { log: say } : {}) },
      );
      if (f.json) process.stdout.write(JSON.stringify(replaySummaryJson(result), null, 2) + "\n");
      else process.stdout.write(replayTable(result));
      if (staging) {
        await staging.abort();
        await writeReplayReport(result, staging.destination, `cicada ${process.argv.slice(2).join(" ")}`);
        say(`wrote ${staging.destination}`);
      }
    } catch (e) {
      await staging?.abort();
      throw e;
    }
  });
}

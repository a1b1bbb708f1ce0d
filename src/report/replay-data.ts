// Reading back what `cicada replay --out` wrote, so that a report can be drawn again from the raw data
// (`cicada replay --report-from DIR --out NEW`) without replaying: replay.json and raw/<policy>-<strategy>.json
// are validated (a results directory is an input like any other), and every run's summary is computed
// again from its records and memory timeline by the current code.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { CicadaError } from "../errors.js";
import { POLICIES } from "../workload/replay-runs.js";
import type { ReplayResult } from "../serve/platform/replay-experiment.js";
import { summarizeReplay } from "../workload/replay-summary.js";
import { STRATEGIES } from "../config.js";

const num = z.number().nullable();
const RecordSchema = z.object({
  func: z.string(),
  model: z.string(),
  scheduledMs: z.number(),
  sentMs: z.number(),
  latencyMs: z.number(),
  status: z.number().int(),
  error: z.string().optional(),
  cold: z.boolean().nullable(),
  instance: z.string().nullable(),
  queueMs: num,
  // Absent in results written before they were recorded.
  gatewayMs: num.default(null),
  instanceMs: num.default(null),
  loadMs: num,
});
const PointSchema = z.object({
  t: z.number(),
  hostBytes: z.number(),
  pssSumBytes: z.number(),
  rssSumBytes: z.number(),
  anonSumBytes: z.number(),
  instances: z.number(),
});
const RawSchema = z.object({ records: z.array(RecordSchema), timeline: z.array(PointSchema) });
const RunSchema = z
  .object({
    policy: z.enum(POLICIES),
    strategy: z.enum(STRATEGIES),
    stats: z.record(z.string(), z.number()),
    wallMs: z.number(),
    instances: z.array(z.unknown()),
    loadAverage1m: z.number(),
  })
  .loose();
const SummarySchema = z.object({
  command: z.string().optional(),
  config: z.object({ trace: z.object({ source: z.string() }).loose() }).loose(),
  machine: z.object({ cpuModel: z.string() }).loose(),
  runs: z.array(RunSchema).min(1),
});

async function readJson<T>(path: string, schema: z.ZodType<T>): Promise<T> {
  if (!existsSync(path)) throw new CicadaError("E_USAGE", `--report-from: ${path} does not exist`);
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, "utf8"));
  } catch (e) {
    throw new CicadaError("E_USAGE", `--report-from: ${path} is not JSON: ${(e as Error).message}`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new CicadaError(
      "E_USAGE",
      `--report-from: ${path}: field '${issue.path.join(".") || "(root)"}': ${issue.message}`,
    );
  }
  return parsed.data;
}

/** The replay written in `dir`, its summaries computed again, and the command that produced it if known. */
export async function readReplayResult(dir: string): Promise<{ result: ReplayResult; command?: string }> {
  const summary = await readJson(join(dir, "replay.json"), SummarySchema);
  const runs = [];
  for (const run of summary.runs) {
    const raw = await readJson(join(dir, "raw", `${run.policy}-${run.strategy}.json`), RawSchema);
    runs.push({
      ...run,
      records: raw.records,
      timeline: raw.timeline,
      summary: summarizeReplay(raw.records, raw.timeline),
    });
  }
  // Results written before replay.json held the command: the first shell block of their report.
  let command = summary.command;
  if (command === undefined && existsSync(join(dir, "report.md"))) {
    command = /```sh\n(.+)\n```/.exec(await readFile(join(dir, "report.md"), "utf8"))?.[1];
  }
  const result = { config: summary.config, machine: summary.machine, runs } as unknown as ReplayResult;
  return command === undefined ? { result } : { result, command };
}

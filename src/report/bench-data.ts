// The benchmark data a report is made from, read back from `cicada bench --out` directories and checked
// with zod, so that a wrong file is refused with the field that is wrong instead of drawing nonsense.
// The schemas cover the fields reports use; fields added later by the benchmark pass through unchecked,
// and the per-stage cosines (added after the first results were committed) are optional.
import { existsSync, statSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { CicadaError } from "../errors.js";
import { STRATEGIES, type StrategyName } from "../config.js";

/** A cosine as stored: JSON has no NaN (a cosine of a zero vector is written as null). */
const cosine = z
  .number()
  .nullable()
  .transform((v) => v ?? NaN);
const strategy = z.enum(STRATEGIES);
const unitTimes = z.object({ workMs: z.number(), waitMs: z.number() });

const StrategyResultSchema = z.object({
  strategy,
  latencyMedianMs: z.number(),
  latencyP10Ms: z.number(),
  latencyP90Ms: z.number(),
  utilization: z.number(),
  peakRssBytes: z.number(),
  peakRssAnonBytes: z.number(),
  baselineRssBytes: z.number(),
  minorFaults: z.number(),
  cosineMin: cosine,
  /** Null where the strategy has no such stage (or its cosine was not a number). */
  stageCosineMin: z.array(z.number().nullable()).optional(),
  units: z.object({ L: unitTimes, R: unitTimes, A: unitTimes, E: unitTimes }),
  /** Counted cold starts per plan (absent in runs before cicada chose plans: all pipelined). */
  plans: z.partialRecord(z.enum(["pipeline", "whole"]), z.number()).optional(),
});

const MachineSchema = z.object({
  cpuModel: z.string(),
  cores: z.number(),
  cpuFeatures: z.array(z.string()),
  virtualized: z.boolean().optional(),
  totalMemoryBytes: z.number(),
  kernel: z.string(),
  nodeVersion: z.string(),
  ortVersion: z.string(),
  transparentHugePages: z.string().nullable().optional(),
  glibcTunables: z.string().nullable().optional(),
  loadAverage1m: z.number(),
});

const SummarySchema = z.object({
  model: z.string().min(1),
  scenario: z.enum(["reload", "fresh"]),
  cache: z.enum(["warm", "cold"]),
  repeat: z.number().int().positive(),
  stages: z.number().int().positive(),
  warmRunMedianMs: z.number(),
  diskBandwidthBytesPerS: z.number(),
  diskBandwidthMethod: z.string(),
  weightBytes: z.number(),
  machine: MachineSchema,
  eviction: z
    .object({
      checks: z.number(),
      failed: z.number(),
      coldProbeMedianBytesPerS: z.number(),
      warmProbeMedianBytesPerS: z.number(),
    })
    .optional(),
  pageCache: z.object({ residentFractionMin: z.number(), residentFractionMax: z.number() }).optional(),
  results: z.array(StrategyResultSchema).min(1),
  memoryBudgetBytes: z.number().positive().optional(),
  refused: z.array(z.object({ strategy, message: z.string() })).optional(),
});

const RawSchema = z.object({
  model: z.string().min(1),
  scenario: z.enum(["reload", "fresh"]),
  cache: z.enum(["warm", "cold"]),
  strategies: z.array(strategy),
  warmRunsMs: z.array(z.number()),
  coldStarts: z.array(
    z.object({
      round: z.number().int().nonnegative(),
      warmUp: z.boolean(),
      report: z.object({
        strategy,
        latencyMs: z.number(),
        trace: z.object({
          requestStart: z.number(),
          requestEnd: z.number(),
          events: z.array(
            z.object({
              unit: z.enum(["L", "R", "A", "E"]),
              stage: z.number().int().nonnegative(),
              worker: z.string(),
              start: z.number(),
              end: z.number(),
              bytes: z.number(),
            }),
          ),
        }),
        outputs: z.array(z.object({ name: z.string(), cosine })),
        cosineMin: cosine,
        stageCosines: z
          .array(z.object({ stage: z.number().int().nonnegative(), tensor: z.string(), cosine }))
          .optional(),
        minorFaults: z.number(),
        memory: z.object({
          samples: z.array(z.tuple([z.number(), z.number(), z.number(), z.number()])),
        }),
      }),
    }),
  ),
});

/** One strategy's summary as reports read it. */
export type ReportResult = z.output<typeof StrategyResultSchema>;
/** One model's summary (bench.json, or one entry of its array). */
export type ReportSummary = z.output<typeof SummarySchema>;
/** One model's raw data (raw/<model>.json). */
export type ReportRaw = z.output<typeof RawSchema>;
/** One counted or warm-up cold start of the raw data. */
export type ReportColdStart = ReportRaw["coldStarts"][number];

/** One model × scenario × cache measured: its summary, its raw data if found, the directory it came from. */
export interface BenchRun {
  summary: ReportSummary;
  raw?: ReportRaw;
  /** The bench --out directory (for links from the report). */
  source?: string;
}

function fieldOf(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (s, k) => (typeof k === "number" ? `${s}[${k}]` : `${s}${s ? "." : ""}${String(k)}`),
    "",
  );
}

function check<T>(schema: z.ZodType<T>, json: unknown, file: string, what: string, prefix = ""): T {
  const result = schema.safeParse(json);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = fieldOf(issue.path) || "(top level)";
  throw new CicadaError("E_USAGE", `${file}: not ${what}: field ${prefix}${field}: ${issue.message}`);
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new CicadaError("E_USAGE", `${file}: cannot read it (${(e as Error).message})`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new CicadaError("E_USAGE", `${file}: not valid JSON (${(e as Error).message})`);
  }
}

/** Parses bench.json: one summary or an array of them. */
export function parseBenchJson(json: unknown, file: string): ReportSummary[] {
  const what = "a bench summary (the bench.json of cicada bench --out)";
  if (!Array.isArray(json)) return [check(SummarySchema, json, file, what)];
  if (json.length === 0) throw new CicadaError("E_USAGE", `${file}: not ${what}: an empty array`);
  return json.map((item, i) => check(SummarySchema, item, file, what, `[${i}].`));
}

/** Parses one raw/<model>.json. */
export function parseBenchRaw(json: unknown, file: string): ReportRaw {
  return check(RawSchema, json, file, "bench raw data (raw/<model>.json of cicada bench --out)");
}

/** Reads one bench --out directory: bench.json and, where present, raw/*.json matched by model. */
export async function readBenchDir(dir: string): Promise<BenchRun[]> {
  const summaries = parseBenchJson(await readJson(join(dir, "bench.json")), join(dir, "bench.json"));
  const rawDir = join(dir, "raw");
  const raws: ReportRaw[] = [];
  if (existsSync(rawDir)) {
    for (const name of (await readdir(rawDir)).filter((n) => n.endsWith(".json")).sort()) {
      raws.push(parseBenchRaw(await readJson(join(rawDir, name)), join(rawDir, name)));
    }
  }
  return summaries.map((summary) => {
    const i = raws.findIndex(
      (r) => r.model === summary.model && r.scenario === summary.scenario && r.cache === summary.cache,
    );
    const raw = i >= 0 ? raws.splice(i, 1)[0] : undefined;
    return { summary, ...(raw ? { raw } : {}), source: dir };
  });
}

/** The bench --out directories at or under `path` (depth-first, sorted; raw/ and charts/ skipped). */
export async function findBenchDirs(path: string, depth = 4): Promise<string[]> {
  if (existsSync(join(path, "bench.json"))) return [path];
  if (depth === 0) return [];
  const entries = await readdir(path, { withFileTypes: true });
  const found: string[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (!e.isDirectory() || e.name.startsWith(".") || e.name === "raw" || e.name === "charts") continue;
    found.push(...(await findBenchDirs(join(path, e.name), depth - 1)));
  }
  return found;
}

/** Reads every run at or under `paths`; one model × scenario × cache may appear only once. */
export async function readBenchRuns(paths: readonly string[]): Promise<BenchRun[]> {
  const runs: BenchRun[] = [];
  for (const path of paths) {
    if (!existsSync(path)) throw new CicadaError("E_USAGE", `${path} does not exist`);
    if (!statSync(path).isDirectory()) {
      throw new CicadaError(
        "E_USAGE",
        `${path} is not a directory (give the --out directory of cicada bench)`,
      );
    }
    const dirs = await findBenchDirs(path);
    if (dirs.length === 0) {
      throw new CicadaError(
        "E_USAGE",
        `${path}: no bench.json in it or in its subdirectories (give the --out directory of cicada bench, or a tree of them)`,
      );
    }
    for (const dir of dirs) runs.push(...(await readBenchDir(dir)));
  }
  const seen = new Map<string, string>();
  for (const { summary: s, source } of runs) {
    const key = `${s.model} (${s.scenario}, cache ${s.cache})`;
    const before = seen.get(key);
    if (before !== undefined) {
      throw new CicadaError("E_USAGE", `${key} appears twice: in ${before} and in ${source}; give only one`);
    }
    seen.set(key, source ?? "");
  }
  return runs;
}

/** The counted (not warm-up) cold starts of one strategy. */
export function countedColdStarts(raw: ReportRaw, s: StrategyName): ReportColdStart[] {
  return raw.coldStarts.filter((c) => !c.warmUp && c.report.strategy === s);
}

/** The counted cold start with the median latency (the lower middle one of an even count). */
export function medianColdStart(raw: ReportRaw, s: StrategyName): ReportColdStart | undefined {
  const sorted = countedColdStarts(raw, s).sort((a, b) => a.report.latencyMs - b.report.latencyMs);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

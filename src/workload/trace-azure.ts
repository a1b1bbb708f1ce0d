// Readers of the two public Azure Functions traces a user may supply (neither can be downloaded here):
// - 2021 invocation trace: `app,func,end_timestamp,duration`, one line per invocation, times in seconds;
//   the arrival is end_timestamp − duration, and a function is identified by app and func together
//   (func ids are unique only within their app).
// - 2019 per-minute counts: `HashOwner,HashApp,HashFunction,Trigger,1,…,1440`, one line per function and
//   day; each minute's count is spread uniformly at random within that minute (seeded), since the file
//   does not say when in the minute the invocations came.
// The format is recognised from the header line. Files are streamed line by line; every malformed line is
// refused with its file, line number, field, and the expected and found values.
import { createReadStream, existsSync, statSync } from "node:fs";
import { createInterface } from "node:readline";
import { CicadaError } from "../errors.js";
import { SeededRandom } from "../util/seeded-random.js";
import { MINUTE_MS, normalizeTrace, type Invocation, type InvocationTrace } from "./trace-invocations.js";

/** The trace formats recognised. */
export type AzureFormat = "azure-2021" | "azure-2019";

/** Options of {@link readAzureTrace}. */
export interface AzureReadOptions {
  /** Only the first `minutes` minutes are materialised (the rest of the file is still checked). */
  minutes?: number;
  /** Seed of the within-minute spreading of the 2019 format. */
  seed?: number;
  /** Refuse (E_TRACE_FORMAT) rather than materialise more invocations than this (default 5 million). */
  maxMaterialised?: number;
}

const HEADER_2021 = ["app", "func", "end_timestamp", "duration"];
const FIXED_2019 = ["HashOwner", "HashApp", "HashFunction", "Trigger"];
const MINUTES_2019 = 1440;

function formatError(file: string, line: number, message: string): CicadaError {
  return new CicadaError("E_TRACE_FORMAT", `${file}:${line}: ${message}`);
}

/** Recognises the format from a header line (fields split on commas, whitespace trimmed). */
export function detectFormat(file: string, header: string): AzureFormat {
  const fields = header.split(",").map((f) => f.trim());
  if (fields.length === HEADER_2021.length && fields.every((f, i) => f === HEADER_2021[i]))
    return "azure-2021";
  if (FIXED_2019.every((f, i) => fields[i] === f)) {
    const minutes = fields.slice(FIXED_2019.length);
    const expected = Array.from({ length: MINUTES_2019 }, (_, i) => String(i + 1));
    if (minutes.length !== MINUTES_2019 || minutes.some((m, i) => m !== expected[i])) {
      throw formatError(
        file,
        1,
        `the 2019 header must list minutes 1..${MINUTES_2019} after ${FIXED_2019.join(",")}, found ${minutes.length} minute columns`,
      );
    }
    return "azure-2019";
  }
  throw formatError(
    file,
    1,
    `unrecognised header: expected '${HEADER_2021.join(",")}' (Azure Functions 2021) or '${FIXED_2019.join(",")},1,…,${MINUTES_2019}' (Azure Functions 2019), found '${header.slice(0, 120)}'`,
  );
}

/** A non-negative finite number from field `name` of a line. */
function numberField(file: string, line: number, name: string, value: string | undefined): number {
  const n = Number(value);
  if (value === undefined || value.trim() === "" || !Number.isFinite(n) || n < 0) {
    throw formatError(file, line, `${name} must be a non-negative number of seconds, found '${value ?? ""}'`);
  }
  return n;
}

/** Collects invocations, refusing to grow past the bound. */
class Collector {
  readonly invocations: Invocation[] = [];
  constructor(
    private readonly file: string,
    private readonly max: number,
  ) {}
  push(line: number, t: number, func: string): void {
    if (this.invocations.length >= this.max) {
      throw formatError(
        this.file,
        line,
        `more than ${this.max} invocations in the selected minutes; select fewer with --minutes`,
      );
    }
    this.invocations.push({ t, func });
  }
}

/** Reads a trace file in either Azure format. */
export async function readAzureTrace(file: string, options: AzureReadOptions = {}): Promise<InvocationTrace> {
  if (!existsSync(file) || !statSync(file).isFile()) {
    throw new CicadaError("E_USAGE", `--trace ${file} does not exist or is not a file`);
  }
  const lines = createInterface({ input: createReadStream(file, "utf8"), crlfDelay: Infinity });
  const endMs = options.minutes !== undefined ? options.minutes * MINUTE_MS : Infinity;
  const collector = new Collector(file, options.maxMaterialised ?? 5_000_000);
  let format: AzureFormat | undefined;
  let n = 0;
  // 2021: arrivals are collected in seconds and shifted to the earliest arrival at the end (the file is
  // not sorted by arrival). NOTE: the published two-week file has about 2 million lines: held whole, that is
  // some 200 MB; only the selected minutes are materialised as invocations.
  const arrivals2021: { t: number; func: string; line: number }[] = [];
  const funcIds = new Map<string, string>();
  for await (const raw of lines) {
    n++;
    const text = n === 1 ? raw.replace(/^\uFEFF/, "") : raw;
    if (text.trim() === "") continue;
    if (format === undefined) {
      format = detectFormat(file, text);
      continue;
    }
    const fields = text.split(",");
    if (format === "azure-2021") {
      if (fields.length !== 4)
        throw formatError(file, n, `expected 4 fields (${HEADER_2021.join(",")}), found ${fields.length}`);
      const [app, func, end, duration] = fields as [string, string, string, string];
      if (!app || !func) throw formatError(file, n, "app and func must not be empty");
      const endS = numberField(file, n, "end_timestamp", end);
      const durS = numberField(file, n, "duration", duration);
      if (durS > endS)
        throw formatError(file, n, `duration ${durS} s is longer than end_timestamp ${endS} s`);
      // One string per function, shared by all its invocations.
      const key = `${app}/${func}`;
      const id = funcIds.get(key) ?? key;
      funcIds.set(key, id);
      arrivals2021.push({ t: endS - durS, func: id, line: n });
    } else {
      if (fields.length !== FIXED_2019.length + MINUTES_2019) {
        throw formatError(
          file,
          n,
          `expected ${FIXED_2019.length + MINUTES_2019} fields, found ${fields.length}`,
        );
      }
      const func = `${fields[1]}/${fields[2]}`;
      // One stream per function: cutting the trace keeps the draws of the minutes that remain.
      const rng = new SeededRandom(options.seed ?? 0, `azure-2019-spread:${func}`);
      for (let m = 0; m < MINUTES_2019 && m * MINUTE_MS < endMs; m++) {
        const value = fields[FIXED_2019.length + m]!;
        const count = Number(value);
        if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(count)) {
          throw formatError(file, n, `minute ${m + 1} must be a whole invocation count, found '${value}'`);
        }
        for (let k = 0; k < count; k++) collector.push(n, (m + rng.next()) * MINUTE_MS, func);
      }
    }
  }
  if (format === undefined) throw formatError(file, 1, "the file is empty (no header line)");
  if (format === "azure-2019") {
    const span = Math.min(MINUTES_2019 * MINUTE_MS, endMs);
    return normalizeTrace(`azure-2019:${file}`, collector.invocations, span);
  }
  const origin = arrivals2021.reduce((min, a) => Math.min(min, a.t), Infinity);
  for (const a of arrivals2021) {
    const t = (a.t - origin) * 1000;
    if (t < endMs) collector.push(a.line, t, a.func);
  }
  const last = collector.invocations.reduce((max, i) => Math.max(max, i.t), 0);
  const span = Math.min(endMs, Math.ceil((last + 1) / MINUTE_MS) * MINUTE_MS);
  return normalizeTrace(`azure-2021:${file}`, collector.invocations, span);
}

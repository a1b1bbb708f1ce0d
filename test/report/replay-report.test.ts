// The replay report from a hand-made result: the table's rows and ratios, every figure a complete SVG with
// one mark per value, the files of --out, and an existing output directory refused.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeMachine } from "../../src/metrics/machine.js";
import { isCicadaError } from "../../src/errors.js";
import { readReplayResult } from "../../src/report/replay-data.js";
import { replayCharts, replayTable, writeReplayReport } from "../../src/report/replay-report.js";
import type { ReplayResult, ReplayRun } from "../../src/serve/platform/replay-experiment.js";
import type { RequestRecord } from "../../src/workload/replay.js";
import { summarizeReplay } from "../../src/workload/replay-summary.js";
import { syntheticTrace } from "../../src/workload/trace-synthetic.js";
import { traceStats } from "../../src/workload/trace-invocations.js";

const root = await mkdtemp(join(tmpdir(), "cicada-replay-report-"));
test.after(() => rm(root, { recursive: true, force: true }));

function run(policy: ReplayRun["policy"], strategy: ReplayRun["strategy"], scale: number): ReplayRun {
  const records: RequestRecord[] = Array.from({ length: 50 }, (_, k) => ({
    func: "f",
    model: "m",
    scheduledMs: k * 10,
    sentMs: k * 10,
    latencyMs: scale * (1 + k),
    status: k === 49 ? 429 : 200,
    cold: k % 5 === 0,
    instance: "i1",
    queueMs: 0,
    gatewayMs: scale * k,
    instanceMs: scale * k,
    loadMs: k % 5 === 0 ? 20 : null,
  }));
  const timeline = Array.from({ length: 20 }, (_, k) => ({
    t: k * 100,
    hostBytes: (200 + scale * k) * 2 ** 20,
    pssSumBytes: (200 + scale * k) * 2 ** 20,
    rssSumBytes: (300 + scale * k) * 2 ** 20,
    anonSumBytes: 150 * 2 ** 20,
    instances: 2,
  }));
  const zero = { cold: 0, loading: 0, warm: 0, busy: 0, idle: 0, evicted: 0 };
  return {
    policy,
    strategy,
    summary: summarizeReplay(records, timeline),
    stats: {
      received: 50,
      rejectedQueueFull: 1,
      timedOutInQueue: 0,
      refusedMemory: 0,
      instanceDeaths: 0,
      preloads: 0,
      unloads: 0,
      evictions: 0,
      recycled: 0,
    },
    wallMs: 2000,
    instances: [{ id: "i1", served: 49, coldServed: 10, transitions: 98, timeInMs: zero, end: "stopped" }],
    records,
    timeline,
    loadAverage1m: 1.5,
  };
}

const trace = syntheticTrace({ seed: 0, minutes: 5 });
const result: ReplayResult = {
  config: {
    trace: traceStats(trace),
    timeScale: 20,
    models: [{ name: "m", bundleDir: "/b/m" }],
    instances: 2,
    ttlS: 600,
    maxWallMs: 900_000,
    maxQueue: 256,
    timeoutMs: 60_000,
    seed: 0,
  },
  machine: describeMachine("1.30.0"),
  runs: [run("stateless", "eager", 4), run("stateless", "cicada", 2), run("keep-alive", "cicada", 1)],
};

test("the tables: a row per run, p99 against stateless × eager, then memory and actions", () => {
  const [latency, memory] = replayTable(result).trim().split("\n\n") as [string, string];
  const rows = latency.split("\n").slice(2);
  assert.equal(rows.length, 3);
  assert.match(rows[0]!, /^\| stateless × eager \| 49\/50 \| 1 \| 0 \|.*\| – \|/);
  assert.match(rows[1]!, /\| 0\.50x \|/);
  assert.match(
    rows[2]!,
    /\| 0\.25x \| 0\.0 \/ 0\.0 \| 25\.0 \/ 48\.5 \| 24\.0 \/ 47\.5 \| 10 \(20\.4 %\) \|/,
  );
  const mem = memory.split("\n").slice(2);
  assert.equal(mem.length, 3);
  assert.match(
    mem[0]!,
    /^\| stateless × eager \| 276 \/ 238 \| 376 \/ 338 \| 150 \/ 150 \| 0 \| 0 \| 0 \| 0 \| 1\.50 \|$/,
  );
});

test("every figure is a complete SVG with one bar per value", () => {
  const charts = replayCharts(result);
  assert.deepEqual(
    charts.map((c) => c.file),
    ["latency.svg", "cold-starts.svg", "memory.svg", "trace.svg"],
  );
  for (const c of charts) {
    assert.match(c.svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.match(c.svg, /<\/svg>\n$/);
  }
  const bars = (svg: string) => (svg.match(/<rect x=/g) ?? []).length;
  assert.equal(bars(charts[0]!.svg), 3 * 3, "p50, p95, p99 per run");
  assert.equal(bars(charts[1]!.svg), 3 + 2 * 3, "cold share; 429 and 504 per run");
  assert.equal((charts[2]!.svg.match(/<polyline/g) ?? []).length, 2 * 3, "two memory panels, a line per run");
});

test("--out: replay.json, raw records, report.md and the figures; an existing directory is refused", async () => {
  const out = join(root, "report");
  await writeReplayReport(result, out, "cicada replay --synthetic");
  assert.deepEqual((await readdir(out)).sort(), [
    "cold-starts.svg",
    "latency.svg",
    "memory.svg",
    "raw",
    "replay.json",
    "report.md",
    "trace.svg",
  ]);
  const json = JSON.parse(await readFile(join(out, "replay.json"), "utf8")) as { runs: object[] };
  assert.equal(json.runs.length, 3);
  assert.ok(!("records" in json.runs[0]!), "raw data only under raw/");
  const raw = JSON.parse(await readFile(join(out, "raw", "keep-alive-cicada.json"), "utf8")) as {
    records: unknown[];
  };
  assert.equal(raw.records.length, 50);
  const md = await readFile(join(out, "report.md"), "utf8");
  assert.match(md, /cicada replay --synthetic/);
  assert.match(md, /!\[Request latency\]\(latency\.svg\)/);
  await assert.rejects(writeReplayReport(result, out), (e: unknown) => isCicadaError(e, "E_OUTPUT_EXISTS"));
  assert.ok(existsSync(join(out, "report.md")));
});

test("a written replay reads back (summaries computed again, the command kept); a malformed one is refused", async () => {
  const out = join(root, "again");
  await writeReplayReport(result, out, "cicada replay --synthetic --time-scale 20");
  const back = await readReplayResult(out);
  assert.equal(back.command, "cicada replay --synthetic --time-scale 20");
  assert.deepEqual(
    back.result.runs.map((r) => r.summary),
    result.runs.map((r) => r.summary),
  );
  assert.equal(back.result.runs[2]!.records.length, 50);
  await writeFile(join(out, "replay.json"), JSON.stringify({ config: {}, machine: {}, runs: [] }));
  await assert.rejects(
    readReplayResult(out),
    (e: unknown) => isCicadaError(e, "E_USAGE") && /replay\.json: field 'config\.trace'/.test(e.message),
  );
  await assert.rejects(readReplayResult(join(root, "nowhere")), (e: unknown) => isCicadaError(e, "E_USAGE"));
});

// The Azure Functions trace readers: both formats on small files written here, and every malformed input
// refused with the line and field it is about.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isCicadaError } from "../../src/errors.js";
import { readAzureTrace } from "../../src/workload/trace-azure.js";
import { traceStats } from "../../src/workload/trace-invocations.js";

const root = await mkdtemp(join(tmpdir(), "cicada-trace-"));
test.after(() => rm(root, { recursive: true, force: true }));

let n = 0;
async function file(text: string): Promise<string> {
  const path = join(root, `trace-${n++}.csv`);
  await writeFile(path, text);
  return path;
}

const header2019 = `HashOwner,HashApp,HashFunction,Trigger,${Array.from({ length: 1440 }, (_, i) => i + 1).join(",")}`;
function row2019(app: string, func: string, counts: Record<number, number>): string {
  const cells = Array.from({ length: 1440 }, (_, m) => String(counts[m + 1] ?? 0));
  return `owner,${app},${func},http,${cells.join(",")}`;
}

test("2021 format: arrival = end - duration, shifted to the first arrival, app/func as the function", async () => {
  const path = await file(
    [
      "app,func,end_timestamp,duration",
      "a1,f1,100.5,0.5", // arrives at 100 s
      "a1,f2,161.0,1.0", // 160 s
      "a2,f1,130.25,0.25", // 130 s: same func id, other app: another function
      "a1,f1,101.0,0.0", // 101 s
    ].join("\n") + "\n",
  );
  const trace = await readAzureTrace(path);
  assert.equal(trace.source, `azure-2021:${path}`);
  assert.deepEqual(
    trace.invocations.map((i) => [i.t, i.func]),
    [
      [0, "a1/f1"],
      [1000, "a1/f1"],
      [30000, "a2/f1"],
      [60000, "a1/f2"],
    ],
  );
  assert.equal(trace.spanMs, 120_000, "whole minutes covering the last arrival");
  const cut = await readAzureTrace(path, { minutes: 1 });
  assert.equal(cut.invocations.length, 3);
  assert.equal(cut.spanMs, 60_000);
});

test("2019 format: each minute's count spread within that minute, seeded", async () => {
  const path = await file(
    [header2019, row2019("app1", "fa", { 1: 3, 3: 2 }), row2019("app1", "fb", { 2: 1, 1440: 4 })].join(
      "\r\n",
    ),
  );
  const trace = await readAzureTrace(path, { seed: 5 });
  const stats = traceStats(trace);
  assert.equal(stats.invocations, 10);
  assert.equal(stats.minutes, 1440);
  assert.deepEqual(stats.perMinute.slice(0, 3), [3, 1, 2]);
  assert.equal(stats.perMinute[1439], 4);
  assert.equal(stats.functions, 2);
  for (let k = 1; k < trace.invocations.length; k++)
    assert.ok(trace.invocations[k]!.t >= trace.invocations[k - 1]!.t, "sorted by time");
  const again = await readAzureTrace(path, { seed: 5 });
  assert.deepEqual(again.invocations, trace.invocations, "same seed, same arrivals");
  const other = await readAzureTrace(path, { seed: 6 });
  assert.notDeepEqual(other.invocations, trace.invocations, "another seed spreads them differently");
  const cut = await readAzureTrace(path, { seed: 5, minutes: 2 });
  assert.equal(cut.invocations.length, 4);
  assert.deepEqual(
    cut.invocations,
    trace.invocations.filter((i) => i.t < 120_000),
    "cutting keeps the same arrivals",
  );
});

test("malformed traces are refused with the line and the field", async () => {
  const cases: [string, RegExp][] = [
    ["", /empty/],
    ["time,function\n1,a\n", /:1: unrecognised header.*app,func,end_timestamp,duration/],
    ["app,func,end_timestamp,duration\na,f,10\n", /:2: expected 4 fields.*found 3/],
    ["app,func,end_timestamp,duration\na,f,x,1\n", /:2: end_timestamp must be a non-negative number.*'x'/],
    ["app,func,end_timestamp,duration\na,f,10,-1\n", /:2: duration must be a non-negative number.*'-1'/],
    ["app,func,end_timestamp,duration\na,f,1,2\n", /:2: duration 2 s is longer than end_timestamp 1 s/],
    ["app,func,end_timestamp,duration\n,f,1,0\n", /:2: app and func must not be empty/],
    [`${header2019}\n${row2019("a", "f", {}).replace(/,0$/, ",1.5")}\n`, /:2: minute 1440 must be a whole/],
    [`${header2019}\nowner,a,f,http,1,2\n`, /:2: expected 1444 fields, found 6/],
    ["HashOwner,HashApp,HashFunction,Trigger,1,2\n", /:1: the 2019 header must list minutes 1..1440/],
  ];
  for (const [text, message] of cases) {
    const path = await file(text);
    await assert.rejects(
      readAzureTrace(path),
      (e: unknown) => isCicadaError(e, "E_TRACE_FORMAT") && message.test(e.message),
      JSON.stringify(text.slice(0, 60)),
    );
  }
  await assert.rejects(readAzureTrace(join(root, "missing.csv")), (e: unknown) =>
    isCicadaError(e, "E_USAGE"),
  );
});

test("a trace larger than the materialisation bound is refused, naming --minutes", async () => {
  const path = await file([header2019, row2019("a", "f", { 1: 50, 2: 50 })].join("\n"));
  await assert.rejects(
    readAzureTrace(path, { maxMaterialised: 60 }),
    (e: unknown) =>
      isCicadaError(e, "E_TRACE_FORMAT") && /more than 60 invocations.*--minutes/.test(e.message),
  );
  assert.equal((await readAzureTrace(path, { maxMaterialised: 60, minutes: 1 })).invocations.length, 50);
});

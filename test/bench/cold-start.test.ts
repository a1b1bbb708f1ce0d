// `cicada bench` end to end on two tiny models with all six strategies (reload, warm cache): the JSON's
// structure and invariants, the raw data written with --out, and the errors a user meets before any work.
// Invariants only: nothing here depends on how fast anything ran.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BenchRaw, BenchSummary } from "../../src/bench/cold-start-types.js";
import { UNITS } from "../../src/metrics/trace.js";
import { STRATEGIES } from "../../src/config.js";
import { cicada, json } from "../support/cli.js";

const root = await mkdtemp(join(tmpdir(), "cicada-bench-"));
const env = { CICADA_CACHE: join(root, "cache") };
test.after(() => rm(root, { recursive: true, force: true }));

test("bench --model tiny-opt,tiny-resnet --repeat 2 --json: every strategy measured and correct", async () => {
  const out = join(root, "out");
  const r = await cicada(
    ["bench", "--model", "tiny-opt,tiny-resnet", "--repeat", "2", "--json", "--out", out],
    env,
  );
  assert.equal(r.code, 0, r.stderr);
  const summaries = json<BenchSummary[]>(r);
  assert.deepEqual(
    summaries.map((s) => s.model),
    ["tiny-opt", "tiny-resnet"],
  );
  for (const s of summaries) {
    assert.equal(s.scenario, "reload");
    assert.equal(s.cache, "warm");
    assert.equal(s.repeat, 2);
    assert.equal(s.eviction, undefined, "no eviction checks with a warm cache");
    assert.ok(s.weightBytes > 0 && s.stages >= 1);
    assert.ok(s.warmRunMedianMs > 0);
    assert.ok(s.diskBandwidthBytesPerS > 0);
    assert.ok(s.machine.cores >= 1 && s.machine.ortVersion.length > 0);
    assert.deepEqual(
      s.results.map((x) => x.strategy),
      [...STRATEGIES],
    );
    for (const x of s.results) {
      const what = `${s.model}/${x.strategy}`;
      assert.ok(x.utilization > 0 && x.utilization <= 1, `${what}: utilisation ${x.utilization}`);
      assert.ok(x.cosineMin >= 0.99999, `${what}: cosine ${x.cosineMin}`);
      assert.ok(x.latencyP10Ms <= x.latencyMedianMs && x.latencyMedianMs <= x.latencyP90Ms, what);
      assert.ok(x.latencyP10Ms > 0, what);
      assert.ok(x.peakRssBytes >= x.baselineRssBytes && x.baselineRssBytes > 0, what);
      assert.ok(x.peakRssAnonBytes > 0 && x.peakRssFileBytes > 0, what);
      assert.ok(x.minorFaults >= 0 && x.majorFaults >= 0 && x.cpuMs >= 0, what);
      for (const u of UNITS) {
        assert.ok(x.units[u].workMs >= 0 && x.units[u].waitMs >= 0, `${what}: unit ${u}`);
      }
      assert.ok(x.units.E.workMs > 0, `${what}: something was executed`);
      // Per-stage correctness: staged strategies check every stage, whole-model ones the last (graph outputs).
      assert.equal(x.stageCosineMin.length, s.stages, what);
      const checked = x.stageCosineMin.filter((c): c is number => c !== null);
      // cicada may choose its whole plan (weights resident): then only the graph outputs exist.
      // (A whole plan in the counted rounds leaves the warm-up's pipeline, if it had one, in the minimum.)
      if ((x.plans.pipeline ?? 0) > 0) assert.equal(checked.length, s.stages, `${what}: stages checked`);
      else assert.ok([1, s.stages].includes(checked.length), `${what}: stages checked`);
      assert.equal(
        Object.values(x.plans).reduce((a, b) => a + b, 0),
        2,
        `${what}: a plan for every counted cold start`,
      );
      if (["eager", "ort-best"].includes(x.strategy)) assert.deepEqual(x.plans, { whole: 2 }, what);
      if (["pisel", "mini", "preload"].includes(x.strategy)) assert.deepEqual(x.plans, { pipeline: 2 }, what);
      assert.ok(
        checked.every((c) => c >= 0.99999),
        `${what}: stage cosines ${x.stageCosineMin.join(", ")}`,
      );
    }
  }

  // --out: the same JSON, and every cold start's raw data (warm-up round included and marked).
  assert.deepEqual(JSON.parse(await readFile(join(out, "bench.json"), "utf8")), summaries);
  assert.deepEqual((await readdir(join(out, "raw"))).sort(), ["tiny-opt.json", "tiny-resnet.json"]);
  const raw = JSON.parse(await readFile(join(out, "raw", "tiny-resnet.json"), "utf8")) as BenchRaw;
  assert.equal(raw.coldStarts.length, STRATEGIES.length * 3);
  for (let round = 0; round <= 2; round++) {
    const inRound = raw.coldStarts.filter((c) => c.round === round);
    assert.deepEqual(inRound.map((c) => c.report.strategy).sort(), [...STRATEGIES].sort(), `round ${round}`);
    assert.ok(inRound.every((c) => c.warmUp === (round === 0)));
  }
  // Rotated order: round 1 does not start with the strategy that opened round 0.
  assert.notEqual(raw.coldStarts[0]!.report.strategy, raw.coldStarts[STRATEGIES.length]!.report.strategy);
  for (const c of raw.coldStarts) {
    assert.ok(c.report.trace.events.length > 0);
    assert.ok(c.report.memory.samples.length >= 2);
    assert.ok(c.report.outputs.length > 0);
  }
  for (const s of STRATEGIES) assert.ok((raw.files[s] ?? []).length > 0, `files read by ${s}`);
  assert.ok(raw.warmRunsMs.length >= 5);
});

test("bench refuses bad flags, unknown models and strategies, broken bundles and an existing --out", async () => {
  const cache = join(root, "cache-errors");
  const run = (args: string[]) => cicada(["bench", ...args], { CICADA_CACHE: cache });
  const expectError = async (args: string[], code: string, exit: number, mentions: RegExp) => {
    const r = await run(args);
    assert.equal(r.code, exit, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(code));
    assert.match(r.stderr, mentions);
  };
  await expectError(["--model", "tiny-nope"], "E_ZOO_UNKNOWN", 1, /tiny-nope/);
  await expectError(["--model", "tiny-opt", "--strategies", "eager,turbo"], "E_USAGE", 2, /turbo/);
  await expectError(["--model", "tiny-opt", "--repeat", "0"], "E_USAGE", 2, /--repeat/);
  await expectError(["--model", "tiny-opt", "--scenario", "warm"], "E_USAGE", 2, /--scenario/);
  await expectError(["--model", "tiny-opt", "--cache", "hot"], "E_USAGE", 2, /--cache/);
  await expectError(["--model", join(root, "missing-bundle")], "E_USAGE", 2, /does not exist/);
  const broken = join(root, "broken");
  await mkdir(broken);
  await writeFile(join(broken, "manifest.json"), "{ not json");
  await expectError(["--model", broken], "E_BUNDLE_MANIFEST", 1, /manifest/);
  const taken = join(root, "taken");
  await mkdir(taken);
  await expectError(["--model", "tiny-opt", "--out", taken], "E_OUTPUT_EXISTS", 1, /taken/);
  assert.equal(existsSync(cache), false, "no model was generated for a refused command");
});

// End to end through the real command: zoo -> import -> inspect -> run --check on every tiny family,
// and the errors a user meets, each with its code and nothing left half-written.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { cp, mkdtemp, readdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cicada, json } from "../support/cli.js";

interface RunJson {
  strategy: string;
  stages: { stage: number; readMs: number; createMs: number; runMs: number }[];
  outputs: { name: string; dims: number[] }[];
  check: { passed: boolean; outputs: { name: string; cosine: number; maxAbsDiff: number }[] };
}
interface InspectJson {
  totalWeightBytes: number;
  stages: {
    index: number;
    weightBytes: number;
    inputs: string[];
    outputs: string[];
    opCounts: Record<string, number>;
  }[];
}

const root = await mkdtemp(join(tmpdir(), "cicada-cli-"));
test.after(() => rm(root, { recursive: true, force: true }));

test("zoo list names every family, full-size and tiny", async () => {
  const r = await cicada(["zoo", "list", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const names = json<{ name: string }[]>(r).map((m) => m.name);
  for (const n of [
    "resnet50",
    "resnet101",
    "resnet152",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "llama-3.2-1b",
    "llama-3.2-3b",
    "llama-3-8b",
    "opt-1.3b",
    "opt-2.7b",
    "opt-6.7b",
  ]) {
    assert.ok(names.includes(n), n);
  }
  for (const n of ["tiny-resnet", "tiny-vgg", "tiny-llama", "tiny-opt"]) assert.ok(names.includes(n), n);
});

for (const [name, stages] of [
  ["tiny-resnet", 3],
  ["tiny-vgg", 3],
  ["tiny-llama", 2],
  ["tiny-opt", 2],
] as const) {
  test(`${name}: zoo -> import -> inspect -> sequential run matches eager`, async () => {
    const model = join(root, name);
    const bundle = join(root, `${name}.bundle`);
    let r = await cicada(["zoo", name, "--out", model, "--seed", "7"]);
    assert.equal(r.code, 0, r.stderr);
    r = await cicada(["import", join(model, "model.onnx"), "--out", bundle, "--stages", String(stages)]);
    assert.equal(r.code, 0, r.stderr);
    r = await cicada(["inspect", bundle, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const inspected = json<InspectJson>(r);
    assert.equal(inspected.stages.length, stages);
    assert.equal(inspected.stages.reduce((n, s) => n + s.weightBytes, 0) >= inspected.totalWeightBytes, true);
    r = await cicada(["run", bundle, "--strategy", "sequential", "--check", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const run = json<RunJson>(r);
    assert.equal(run.stages.length, stages);
    assert.ok(run.check.passed);
    for (const o of run.check.outputs) assert.ok(o.cosine >= 0.99999, `${o.name}: ${o.cosine}`);
    r = await cicada(["run", join(model, "model.onnx"), "--strategy", "eager", "--json"]);
    assert.equal(r.code, 0, r.stderr);
  });
}

test("run --strategy cicada cold-starts through the pipeline, checks against eager and draws the Gantt chart", async () => {
  const bundle = join(root, "tiny-opt.bundle");
  const gantt = join(root, "tiny-opt.svg");
  const cache = join(root, "runtime-cache");
  const args = ["run", bundle, "--strategy", "cicada", "--check", "--gantt", gantt, "--json"];
  const r = await cicada([...args, "--plan", "pipeline"], { CICADA_CACHE: cache });
  assert.equal(r.code, 0, r.stderr);
  const run = json<RunJson & { pipeline: { plan: string; utilization: number } }>(r);
  assert.ok(run.check.passed);
  assert.equal(run.pipeline.plan, "pipeline");
  assert.ok(run.pipeline.utilization > 0 && run.pipeline.utilization <= 1);
  assert.match(await readFile(gantt, "utf8"), /^<svg [^]*<title>E1 on worker-/);
  // The whole plan: one session from MiniLoader's whole-model graph, the same outputs.
  const whole = await cicada([...args, "--plan", "whole"], { CICADA_CACHE: cache });
  assert.equal(whole.code, 0, whole.stderr);
  const w = json<RunJson & { pipeline: { plan: string } }>(whole);
  assert.ok(w.check.passed);
  assert.equal(w.pipeline.plan, "whole");
  assert.doesNotMatch(await readFile(gantt, "utf8"), /<title>E1 on worker-/);
  const bad = await cicada([...args, "--plan", "staged"], { CICADA_CACHE: cache });
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /E_USAGE: --plan must be one of auto, pipeline, whole, found 'staged'/);
});

test("demo generates, imports and cold-starts a zoo model with cicada, and checks it against eager", async () => {
  const r = await cicada(["demo", "--model", "tiny-vgg"], { CICADA_CACHE: join(root, "demo-cache") });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /cicada cold start \(load \+ first run\): [\d.]+ ms, plan (whole|pipeline)/);
  assert.match(r.stdout, /output logits vs eager: cosine 1\.0000000/);
});

async function expectError(args: string[], code: string, pattern: RegExp, exit = 1) {
  const r = await cicada(args);
  assert.equal(r.code, exit, `${args.join(" ")}: exit ${r.code}\n${r.stderr}`);
  assert.match(r.stderr, new RegExp(`cicada: ${code}: `));
  assert.match(r.stderr, pattern);
}

test("bad zoo names, existing outputs and out-of-range flags are refused clearly", async () => {
  await expectError(
    ["zoo", "resnet5", "--out", join(root, "x")],
    "E_ZOO_UNKNOWN",
    /'resnet5'.*known: .*resnet50/,
  );
  assert.ok(!existsSync(join(root, "x")));
  await expectError(
    ["zoo", "tiny-resnet", "--out", join(root, "tiny-resnet")],
    "E_OUTPUT_EXISTS",
    /exists already/,
  );
  await expectError(
    ["zoo", "tiny-resnet", "--out", join(root, "y"), "--seed", "-1"],
    "E_USAGE",
    /--seed must be/,
    2,
  );
  const source = join(root, "tiny-resnet", "model.onnx");
  await expectError(["import", source, "--out", join(root, "b0"), "--stages", "0"], "E_USAGE", /--stages/, 2);
  await expectError(
    ["import", source, "--out", join(root, "b1"), "--stages", "100000"],
    "E_USAGE",
    /out of range/,
    2,
  );
  await expectError(
    ["import", source, "--out", join(root, "tiny-resnet.bundle")],
    "E_OUTPUT_EXISTS",
    /exists already/,
  );
  await expectError(
    ["run", join(root, "tiny-resnet.bundle"), "--strategy", "turbo"],
    "E_USAGE",
    /--strategy must be one of/,
    2,
  );
  const leftovers = (await readdir(root)).filter(
    (f) => f.startsWith("b0") || f.startsWith("b1") || f.startsWith(".b"),
  );
  assert.deepEqual(leftovers, []);
});

test("truncated, non-ONNX and data-less models are refused at import, leaving nothing behind", async () => {
  const dir = join(root, "broken");
  await cp(join(root, "tiny-resnet"), dir, { recursive: true });
  const model = join(dir, "model.onnx");
  const bytes = await readFile(model);
  await writeFile(join(dir, "truncated.onnx"), bytes.subarray(0, Math.floor(bytes.length / 2)));
  await expectError(
    ["import", join(dir, "truncated.onnx"), "--out", join(root, "bt")],
    "E_ONNX_PARSE",
    /truncated\.onnx/,
  );
  await writeFile(join(dir, "text.onnx"), "hello\n");
  await expectError(
    ["import", join(dir, "text.onnx"), "--out", join(root, "bx")],
    "E_ONNX_PARSE",
    /text\.onnx/,
  );
  await truncate(join(dir, "model.onnx.data"), 100);
  await expectError(
    ["import", model, "--out", join(root, "bd")],
    "E_ONNX_EXTERNAL_DATA",
    /model\.onnx\.data/,
  );
  await rm(join(dir, "model.onnx.data"));
  await expectError(
    ["import", model, "--out", join(root, "bm")],
    "E_ONNX_EXTERNAL_DATA",
    /model\.onnx\.data/,
  );
  for (const d of ["bt", "bx", "bd", "bm"]) assert.ok(!existsSync(join(root, d)), d);
});

test("a bundle with corrupt weights or a malformed manifest is refused before running", async () => {
  const corrupt = join(root, "corrupt.bundle");
  await cp(join(root, "tiny-resnet.bundle"), corrupt, { recursive: true });
  const weights = join(corrupt, "weights.safetensors");
  const bytes = await readFile(weights);
  bytes[bytes.length - 5]! ^= 0xff;
  await writeFile(weights, bytes);
  await expectError(
    ["run", corrupt, "--strategy", "sequential"],
    "E_BUNDLE_CHECKSUM",
    /stage \d+ .*fail their checksum: expected crc32:[0-9a-f]{8}, found crc32:[0-9a-f]{8}/,
  );

  const malformed = join(root, "malformed.bundle");
  await cp(join(root, "tiny-resnet.bundle"), malformed, { recursive: true });
  const manifest = JSON.parse(await readFile(join(malformed, "manifest.json"), "utf8")) as {
    stages: { weights: { checksum: unknown } }[];
  };
  manifest.stages[0]!.weights.checksum = 42;
  await writeFile(join(malformed, "manifest.json"), JSON.stringify(manifest));
  await expectError(["inspect", malformed], "E_BUNDLE_MANIFEST", /stages\.0\.weights\.checksum/);
  await writeFile(join(malformed, "manifest.json"), "{ not json");
  await expectError(["run", malformed], "E_BUNDLE_MANIFEST", /not valid JSON/);
});

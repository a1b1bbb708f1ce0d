// The memory budget: a load that fits runs resident, one whose largest stage fits streams (load, run,
// free: every request loads each stage before its execution and releases it after), one that fits neither
// way is refused with E_MEMORY_BUDGET before anything is allocated; strategies that map their weights run
// under a budget the copying ones cannot meet. Real sessions on a generated MLP (4 stages of 64 MiB: large
// next to the noise of the process's own memory, which the garbage collector and the workers move by tens
// of MiB).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { isCicadaError } from "../../src/errors.js";
import { importModel } from "../../src/importer/import-model.js";
import { similarity } from "../../src/metrics/similarity.js";
import { loadModel, prepareModel } from "../../src/runtime/load-model.js";
import { anonymousBytes, defaultMemoryBudget, memoryMode } from "../../src/runtime/memory-budget.js";
import { randomInputs } from "../../src/runtime/model-inputs.js";
import { runEager } from "../../src/runtime/reference-runner.js";
import { createRuntime } from "../../src/runtime/runtime.js";
import { writeMlp } from "../importer/tiny-models.js";
import { cicada } from "../support/cli.js";

const MiB = 2 ** 20;
const root = await mkdtemp(join(tmpdir(), "cicada-memory-"));
const cacheRoot = join(root, "cache");
const runtime = await createRuntime({ cacheRoot, intraOpNumThreads: 1 });
test.after(async () => {
  await runtime.close();
  await rm(root, { recursive: true, force: true });
});

const modelPath = await writeMlp(root, 4, 4096);
const bundleDir = join(root, "bundle");
const { manifest } = await importModel(modelPath, bundleDir, { stages: 4 });
const feeds = randomInputs(manifest.inputs, 3);
const eager = await runEager(modelPath, feeds);

function assertMatchesEager(outputs: Record<string, { data: ArrayLike<number> | ArrayLike<bigint> }>) {
  for (const [name, expected] of Object.entries(eager.outputs)) {
    const s = similarity(outputs[name]!.data, expected.data);
    assert.ok(s.cosine >= 0.99999 && s.nonFiniteMismatches === 0, `${name}: ${JSON.stringify(s)}`);
  }
}

test("the mode: resident when the copies fit, streaming when the largest stage does, else refused", () => {
  const copies = { factor: 3, canStream: true };
  const total = manifest.totalWeightBytes;
  assert.equal(memoryMode(manifest, "m", "pisel", copies, 10 * MiB + 3 * total, 10 * MiB), "resident");
  assert.equal(memoryMode(manifest, "m", "pisel", copies, 10 * MiB + total, 10 * MiB), "streaming");
  assert.throws(
    () => memoryMode(manifest, "m", "eager", { factor: 1.25, canStream: false }, 10 * MiB + total, 10 * MiB),
    (e: unknown) =>
      isCicadaError(e, "E_MEMORY_BUDGET") && /m: eager needs about .* MiB .*budget of .* MiB/.test(e.message),
  );
  assert.equal(
    memoryMode(manifest, "m", "mini", { factor: 0, canStream: true }, 10 * MiB, 10 * MiB),
    "resident",
  );
});

test("the default budget is the machine's, or a Lambda function's configured memory when smaller", () => {
  assert.ok(defaultMemoryBudget({}) <= totalmem() && defaultMemoryBudget({}) > 0);
  assert.equal(defaultMemoryBudget({ AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "512" }), 512e6);
  assert.equal(defaultMemoryBudget({ AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "junk" }), defaultMemoryBudget({}));
});

test("copying strategies are refused before allocating when not even a stage fits; mapping ones run", async () => {
  for (const strategy of ["mini", "cicada", "ort-best"] as const)
    await prepareModel(runtime, bundleDir, strategy);
  // The budget leaves 32 MiB on top of what the process holds when the load starts: not room for one
  // stage's copies (3 x 64 MiB).
  const budget = () => anonymousBytes() + 32 * MiB;
  for (const strategy of ["eager", "pisel", "preload"] as const) {
    await assert.rejects(
      loadModel(runtime, bundleDir, { strategy, memoryBudgetBytes: budget() }),
      (e: unknown) => isCicadaError(e, "E_MEMORY_BUDGET") && e.message.includes(bundleDir),
      strategy,
    );
  }
  for (const strategy of ["mini", "cicada", "ort-best"] as const) {
    const model = await loadModel(runtime, bundleDir, { strategy, memoryBudgetBytes: budget() });
    try {
      assertMatchesEager((await model.run(feeds)).outputs);
    } finally {
      await model.dispose();
    }
  }
});

test("a budget only a stage at a time fits streams: every request loads and frees each stage", async () => {
  for (const strategy of ["pisel", "preload"] as const) {
    // Room for one stage's copies (3 x 64 MiB) with margin, not for all four stages' (768 MiB).
    const model = await loadModel(runtime, bundleDir, {
      strategy,
      memoryBudgetBytes: anonymousBytes() + 400 * MiB,
    });
    try {
      for (let i = 0; i < 2; i++) {
        const [a, b] = await Promise.all([model.run(feeds), model.run(feeds)]);
        for (const run of [a, b]) {
          assertMatchesEager(run.outputs);
          assert.ok(run.cold, `${strategy}: a streaming request always loads`);
          const built = run.trace.events.filter((e) => e.unit === "A" || e.unit === "L").map((e) => e.stage);
          assert.deepEqual(built, [0, 1, 2, 3], `${strategy}: every stage built within the request`);
        }
      }
    } finally {
      await model.dispose();
    }
  }
});

test("cicada run --memory-budget-mb refuses eager with E_MEMORY_BUDGET and runs cicada", async () => {
  const env = { CICADA_CACHE: cacheRoot };
  const refused = await cicada(["run", bundleDir, "--strategy", "eager", "--memory-budget-mb", "1"], env);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /E_MEMORY_BUDGET/);
  const ran = await cicada(
    ["run", bundleDir, "--strategy", "cicada", "--memory-budget-mb", "400", "--check"],
    env,
  );
  assert.equal(ran.code, 0, ran.stderr);
  const bad = await cicada(["run", bundleDir, "--memory-budget-mb", "0"], env);
  assert.match(bad.stderr, /E_USAGE.*--memory-budget-mb/s);
});

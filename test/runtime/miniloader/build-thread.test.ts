// Cache builds run off the calling thread: while MiniLoader builds a generated model's graphs (and
// ort-best its model), a 5 ms timer on this thread keeps firing, its longest gap far below the build's
// length (measured on a loaded 2-core machine: 9-18 ms of a 550-720 ms build on its own thread; the same
// build on this thread stopped the timer for 247 of 787 ms, one whole-graph optimisation). The cold
// start's side: a process that finds a verified entry starts no build thread and never maps onnxruntime's
// library. A build that fails on its thread fails the caller with the error's code.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { isCicadaError } from "../../../src/errors.js";
import { openBundle } from "../../../src/format/bundle.js";
import { importModel } from "../../../src/importer/import-model.js";
import { ensureOrtBestModel } from "../../../src/runtime/derived-forms.js";
import { buildThreads, runBuild } from "../../../src/runtime/miniloader/build-thread.js";
import { ensureOptimizedStages } from "../../../src/runtime/miniloader/ensure.js";
import { loaderArgs } from "../../../src/util/own-entry.js";
import { writeMlp } from "../../importer/tiny-models.js";

const root = await mkdtemp(join(tmpdir(), "cicada-build-thread-"));
test.after(() => rm(root, { recursive: true, force: true }));
// Large enough that each optimisation takes a while (8 x 1024^2 floats, 32 MiB, four stages).
const source = await writeMlp(join(root, "big"), 8, 1024);
const bundleDir = join(root, "big.bundle");
await importModel(source, bundleDir, { stages: 4 });
const bundle = await openBundle(bundleDir);

/** Runs `work` while a 5 ms interval ticks on this thread; its duration and the longest gap between ticks. */
async function timed(work: () => Promise<unknown>): Promise<{ ms: number; maxGapMs: number }> {
  let last = performance.now();
  let maxGapMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGapMs = Math.max(maxGapMs, now - last);
    last = now;
  }, 5);
  const start = performance.now();
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  const end = performance.now();
  return { ms: end - start, maxGapMs: Math.max(maxGapMs, end - last) };
}

test("MiniLoader's and ort-best's builds leave the event loop free: a 5 ms timer keeps firing", async () => {
  const cache = join(root, "cache");
  const before = buildThreads().started;
  const mini = await timed(() => ensureOptimizedStages(bundle, cache));
  const ortBest = await timed(() => ensureOrtBestModel(bundle, cache));
  assert.equal(buildThreads().started - before, 2, "one build thread per build");
  assert.equal(buildThreads().running, 0, "each thread ended with its build");
  for (const [name, r] of Object.entries({ mini, ortBest })) {
    // Too quick a build proves nothing: the model must be made larger, not the bound looser.
    assert.ok(r.ms >= 120, `${name}: the build took only ${r.ms.toFixed(0)} ms`);
    assert.ok(
      r.maxGapMs < Math.max(50, r.ms / 5),
      `${name}: the event loop stood still for ${r.maxGapMs.toFixed(0)} ms of a ${r.ms.toFixed(0)} ms build`,
    );
  }
});

test("a cold start that finds a verified entry starts no build thread and loads no onnxruntime", async () => {
  const cache = join(root, "cold-cache");
  await ensureOptimizedStages(bundle, cache, { forms: ["whole"] });
  const src = (p: string) => JSON.stringify(fileURLToPath(new URL(`../../../src/${p}`, import.meta.url)));
  const script = join(root, "cold-start.mts");
  await writeFile(
    script,
    `import { readFileSync } from "node:fs";
import { openBundle } from ${src("format/bundle.ts")};
import { buildThreads } from ${src("runtime/miniloader/build-thread.ts")};
import { ensureOptimizedStages, findOptimizedStages } from ${src("runtime/miniloader/ensure.ts")};
import { isVerified } from ${src("runtime/miniloader/verify.ts")};
const bundle = await openBundle(${JSON.stringify(bundleDir)});
const found = await findOptimizedStages(bundle, ${JSON.stringify(cache)});
const ensured = await ensureOptimizedStages(bundle, ${JSON.stringify(cache)}, { forms: ["whole"] });
console.log(JSON.stringify({
  found: found?.whole !== undefined,
  verified: found !== undefined && isVerified(found),
  built: ensured.built,
  threads: buildThreads().started,
  onnxruntimeMapped: /onnxruntime/.test(readFileSync("/proc/self/maps", "utf8")),
}));
`,
  );
  const { stdout } = await promisify(execFile)(process.execPath, [...loaderArgs(), script]);
  assert.deepEqual(JSON.parse(stdout), {
    found: true,
    verified: true,
    built: false,
    threads: 0,
    onnxruntimeMapped: false,
  });
  // The probe can fail: this process built the entry above on a thread of its own, which loaded it.
  assert.match(readFileSync("/proc/self/maps", "utf8"), /onnxruntime/);
});

test("a build that fails on its thread fails the caller with the error's code", async () => {
  const staging = await mkdtemp(join(root, "staging-"));
  await assert.rejects(
    runBuild({ kind: "miniloader", bundleDir, key: "not-the-key", options: {}, forms: ["stages"], staging }),
    (e: unknown) => isCicadaError(e, "E_CACHE") && /changed while/.test(e.message),
  );
  await assert.rejects(
    runBuild({ kind: "ort-best", source: join(root, "missing.onnx"), staging }),
    (e: unknown) => isCicadaError(e, "E_RUNTIME") && /missing\.onnx/.test(e.message),
  );
});

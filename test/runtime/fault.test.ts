// Faults a cold start meets in production: the process killed in the middle of building MiniLoader's entry
// (or of an import), and a cache file changing under a model that is loaded or about to be. Real processes
// (the `cicada` command, SIGKILL) and real onnxruntime sessions: a rerun after a kill must succeed, be
// correct and leave no staging behind; a corrupted cache file must be detected, never returned as output,
// and healed by the next load.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdir, mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isCicadaError } from "../../src/errors.js";
import { importModel } from "../../src/importer/import-model.js";
import type { Manifest } from "../../src/format/manifest.js";
import { loadModel, prepareModel, type LoadOptions } from "../../src/runtime/load-model.js";
import { randomInputs, readInputsFile } from "../../src/runtime/model-inputs.js";
import { runEager } from "../../src/runtime/reference-runner.js";
import { createRuntime } from "../../src/runtime/runtime.js";
import type { HostTensor } from "../../src/runtime/host-tensor.js";
import { inputX, writeMlp } from "../importer/tiny-models.js";
import { CLI } from "../support/cli.js";
import { compareCosine } from "./trust/tensors.js";

const root = await mkdtemp(join(tmpdir(), "cicada-fault-"));
test.after(() => rm(root, { recursive: true, force: true }));

/** A staging name (`.NAME.tmp-PID-HEX`, `.NAME.evicted-PID-HEX`): something written and not yet renamed. */
const STAGING = /^\..+\.(tmp|evicted)-\d+-[0-9a-f]+$/;

/** Every staging file or directory under `dir`, recursively. */
function stagingUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (STAGING.test(e.name)) out.push(path);
    if (e.isDirectory()) out.push(...stagingUnder(path));
  }
  return out;
}

/** A staging directory in `dir` that already holds a file (the write is under way), if any. */
function writingIn(dir: string): string | undefined {
  if (!existsSync(dir)) return undefined;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (STAGING.test(name) && statSync(path).isDirectory() && readdirSync(path).length > 0) return path;
  }
  return undefined;
}

/**
 * Runs `cicada ...args` and SIGKILLs it as soon as a staging directory with content appears in `watch`;
 * resolves with the staging directory it was writing (still there after the kill), or undefined if the
 * command finished (or got past the write) before it could be killed mid-write.
 */
function killDuringWrite(
  args: string[],
  env: Record<string, string>,
  watch: string,
): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    let caught: string | undefined;
    const poll = setInterval(() => {
      caught = writingIn(watch);
      if (caught) {
        child.kill("SIGKILL");
        clearInterval(poll);
      }
    }, 2);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearInterval(poll);
      if (signal !== "SIGKILL" && code !== 0)
        reject(new Error(`cicada ${args.join(" ")}: exit ${code}\n${stderr}`));
      else resolve(signal === "SIGKILL" && caught && existsSync(caught) ? caught : undefined);
    });
  });
}

function cicada(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, stderr }));
  });
}

function assertOutputs(
  found: Record<string, HostTensor>,
  expected: Record<string, HostTensor>,
  what: string,
): void {
  for (const [name, e] of Object.entries(expected)) {
    const d = compareCosine(found[name], e);
    assert.equal(d, undefined, `${what}: output ${name}: ${d}`);
  }
}

// Large enough that MiniLoader's build and the import take a few hundred milliseconds (8 x 768^2 floats).
const big = await writeMlp(join(root, "big"), 8, 768);
const bigBundle = join(root, "big.bundle");
await importModel(big, bigBundle, { stages: 4 });

test("SIGKILL during MiniLoader's build: the rerun succeeds, is correct and leaves no staging", async () => {
  const manifest = JSON.parse(readFileSync(join(bigBundle, "manifest.json"), "utf8")) as Manifest;
  const expected = (await runEager(big, randomInputs(manifest.inputs, 3))).outputs;
  let killed: string | undefined;
  let cache = "";
  for (let attempt = 0; attempt < 4 && !killed; attempt++) {
    cache = join(root, `kill-cache-${attempt}`);
    killed = await killDuringWrite(
      ["run", bigBundle, "--strategy", "cicada", "--seed", "3"],
      { CICADA_CACHE: cache },
      join(cache, "miniloader"),
    );
  }
  assert.ok(killed, "the build finished before it could be killed four times over: use a larger model");
  await mkdir(join(root, "kill-out"));
  const out = join(root, "kill-out", "outputs.json");
  const rerun = await cicada(["run", bigBundle, "--strategy", "cicada", "--seed", "3", "--outputs", out], {
    CICADA_CACHE: cache,
  });
  assert.equal(rerun.code, 0, `rerun after the kill failed:\n${rerun.stderr}`);
  assertOutputs(await readInputsFile(out), expected, "rerun after the kill");
  assert.deepEqual(stagingUnder(join(root, "kill-out")), [], "staging left beside the outputs");
  // The rerun must clean its own stale staging; whatever is left, `cicada cache prune` must see and remove.
  const afterRerun = stagingUnder(cache);
  const prune = await cicada(["cache", "prune", "--orphans"], { CICADA_CACHE: cache });
  const afterPrune = stagingUnder(cache);
  assert.deepEqual(
    { afterRerun, afterPrune },
    { afterRerun: [], afterPrune: [] },
    `staging of the killed build (${killed}) left in the cache (prune exit ${prune.code}: ${prune.stderr.trim()})`,
  );
});

test("two processes building the same MiniLoader entry at once both succeed, correctly, and leave no staging", async () => {
  const manifest = JSON.parse(readFileSync(join(bigBundle, "manifest.json"), "utf8")) as Manifest;
  const expected = (await runEager(big, randomInputs(manifest.inputs, 5))).outputs;
  const cache = join(root, "race-cache");
  await mkdir(join(root, "race-out"));
  const outs = [0, 1].map((i) => join(root, "race-out", `outputs-${i}.json`));
  const runs = await Promise.all(
    outs.map((out) =>
      cicada(["run", bigBundle, "--strategy", "cicada", "--seed", "5", "--outputs", out], {
        CICADA_CACHE: cache,
      }),
    ),
  );
  for (const [i, r] of runs.entries()) {
    assert.equal(r.code, 0, `process ${i} failed:\n${r.stderr}`);
    assertOutputs(await readInputsFile(outs[i]!), expected, `process ${i}`);
  }
  assert.deepEqual(stagingUnder(cache), [], "staging left in the cache by the race");
});

test("SIGKILL during an import: no bundle appears, the rerun imports and leaves no staging", async () => {
  let killed: string | undefined;
  let out = "";
  for (let attempt = 0; attempt < 4 && !killed; attempt++) {
    out = join(root, "imports", `b${attempt}`);
    killed = await killDuringWrite(["import", big, "--out", out, "--stages", "4"], {}, join(root, "imports"));
    if (!killed) await rm(out, { recursive: true, force: true });
  }
  assert.ok(killed, "the import finished before it could be killed four times over: use a larger model");
  assert.ok(!existsSync(out), `a killed import left ${out} behind`);
  const rerun = await cicada(["import", big, "--out", out, "--stages", "4"], {});
  assert.equal(rerun.code, 0, `rerun of the import failed:\n${rerun.stderr}`);
  assert.deepEqual(
    stagingUnder(join(root, "imports")),
    [],
    `staging left beside the bundle (killed: ${killed})`,
  );
  const runtime = await createRuntime({ cacheRoot: join(root, "import-cache"), intraOpNumThreads: 1 });
  try {
    const manifest = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8")) as Manifest;
    const feeds = randomInputs(manifest.inputs, 4);
    const model = await loadModel(runtime, out, { strategy: "cicada" });
    const { outputs } = await model.run(feeds);
    await model.dispose();
    assertOutputs(outputs, (await runEager(big, feeds)).outputs, "the re-imported bundle");
  } finally {
    await runtime.close();
  }
});

/** XORs the top exponent bit of the first 256 floats of `path`, in place (same inode, as a bad write would). */
async function corruptInPlace(path: string): Promise<void> {
  const handle = await open(path, "r+");
  try {
    const size = (await handle.stat()).size;
    const n = Math.min(256, Math.floor(size / 4));
    const bytes = Buffer.alloc(n * 4);
    await handle.read(bytes, 0, bytes.length, 0);
    for (let i = 0; i < n; i++) bytes[i * 4 + 3] = bytes[i * 4 + 3]! ^ 0x40;
    await handle.write(bytes, 0, bytes.length, 0);
  } finally {
    await handle.close();
  }
}

/** Every data file of the derived forms under `cache` (what a loaded model maps). */
function dataFiles(cache: string): string[] {
  const out: string[] = [];
  for (const kind of ["miniloader", "ort-best"]) {
    const base = join(cache, kind);
    if (!existsSync(base)) continue;
    for (const entry of readdirSync(base))
      for (const f of readdirSync(join(base, entry)))
        if (f.endsWith(".data") && statSync(join(base, entry, f)).size > 0) out.push(join(base, entry, f));
  }
  return out;
}

const MAPPED: { name: string; options: LoadOptions }[] = [
  { name: "mini", options: { strategy: "mini" } },
  { name: "cicada/whole", options: { strategy: "cicada", plan: "whole" } },
  { name: "cicada/pipeline", options: { strategy: "cicada", plan: "pipeline" } },
  { name: "ort-best", options: { strategy: "ort-best" } },
];

test("a cache data file corrupted under a loaded model and between loads is detected, never returned, and healed", async () => {
  const small = await writeMlp(join(root, "small"), 3, 64);
  const bundle = join(root, "small.bundle");
  await importModel(small, bundle, { stages: 3 });
  const feeds = inputX(7, 64);
  const expected = (await runEager(small, feeds)).outputs;
  for (const { name, options } of MAPPED) {
    const cacheRoot = join(root, `corrupt-${name.replace("/", "-")}`);
    const runtime = await createRuntime({ cacheRoot, intraOpNumThreads: 1 });
    try {
      await prepareModel(runtime, bundle, options.strategy);
      /** One run: the expected output or a coded error (then `undefined`); anything else fails. */
      const judge = async (run: () => Promise<Record<string, HostTensor>>, when: string) => {
        try {
          assertOutputs(await run(), expected, `${name}, ${when}`);
          return "correct";
        } catch (e) {
          if (isCicadaError(e)) return e.code;
          throw e;
        }
      };
      const model = await loadModel(runtime, bundle, options);
      assertOutputs((await model.run(feeds)).outputs, expected, `${name}, before the corruption`);
      const files = dataFiles(cacheRoot);
      assert.ok(files.length > 0, `${name}: no cached data file to corrupt`);
      for (const f of files) await corruptInPlace(f);
      await judge(async () => (await model.run(feeds)).outputs, "warm run after its mapped file changed");
      await model.dispose();
      const second = await judge(async () => {
        const m = await loadModel(runtime, bundle, options);
        try {
          return (await m.run(feeds)).outputs;
        } finally {
          await m.dispose();
        }
      }, "next load in the same process");
      const third = await loadModel(runtime, bundle, options);
      try {
        assertOutputs(
          (await third.run(feeds)).outputs,
          expected,
          `${name}, the load after (${second}): not healed`,
        );
      } finally {
        await third.dispose();
      }
    } finally {
      await runtime.close();
    }
  }
});

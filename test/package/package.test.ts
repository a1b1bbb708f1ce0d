// The package as a user gets it: `npm pack`, the tarball installed into a fresh project (dependencies from
// the local npm cache, nothing downloaded when it is warm), then used from outside the repository. Plain
// `node` runs the README's example (examples/run-bundle.mjs) against a tiny bundle and the compiled
// `cicada` command runs; strict TypeScript consumers type-check against the shipped declarations under
// moduleResolution nodenext and bundler. The tarball holds what a user needs and nothing else.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { importModel } from "../../src/importer/import-model.js";
import { openBundle } from "../../src/format/bundle.js";
import { runEager } from "../../src/runtime/reference-runner.js";
import { generateZooModel } from "../../src/zoo/registry.js";
import { ensureBuilt, ROOT } from "../support/build.js";

const exec = promisify(execFile);
/** npm as `npm test` runs it (npm_execpath), else the one on PATH. */
const NPM = process.env.npm_execpath ? [process.execPath, process.env.npm_execpath] : ["npm"];
const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");

/** Runs `cmd args` in `cwd`; rejects with its output if it fails or outlives `timeoutMs`. */
async function run(
  cmd: string,
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
  timeoutMs = 60_000,
) {
  try {
    return await exec(cmd, args, {
      cwd,
      env: { ...process.env, ...env },
      timeout: timeoutMs,
      maxBuffer: 32 << 20,
    });
  } catch (e) {
    const { stdout, stderr, message } = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${[cmd, ...args].join(" ")} failed: ${message}\n${stdout ?? ""}\n${stderr ?? ""}`);
  }
}

const npm = (args: string[], cwd: string) =>
  run(NPM[0]!, [...NPM.slice(1), ...args, "--no-audit", "--no-fund", "--loglevel=error"], cwd, {}, 180_000);

interface PackResult {
  filename: string;
  size: number;
  files: { path: string }[];
}

const work = await mkdtemp(join(tmpdir(), "cicada-package-"));
test.after(() => rm(work, { recursive: true, force: true }));

let packed: PackResult | undefined;
/** The tarball (built from the current sources) and the consumer project it is installed in. */
async function consumer(): Promise<{ pack: PackResult; dir: string }> {
  const dir = join(work, "consumer");
  if (packed) return { pack: packed, dir };
  await ensureBuilt();
  // --ignore-scripts: dist/ is current (ensureBuilt); prepack would rebuild it under other test processes.
  const { stdout } = await npm(["pack", "--json", "--ignore-scripts", "--pack-destination", work], ROOT);
  const pack = (JSON.parse(stdout) as PackResult[])[0]!;
  await mkdir(dir);
  await writeFile(
    join(dir, "package.json"),
    JSON.stringify({ name: "consumer", private: true, type: "module" }),
  );
  // The CPU binary ships in onnxruntime-node; its install script would fetch CUDA providers on Linux.
  await writeFile(join(dir, ".npmrc"), "onnxruntime-node-install=skip\n");
  await npm(["install", "--no-save", "--prefer-offline", join(work, pack.filename)], dir);
  packed = pack;
  return { pack, dir };
}

test("npm pack: at most 1 MiB, compiled code and declarations only", { timeout: 240_000 }, async () => {
  const { pack } = await consumer();
  assert.ok(pack.size <= 1 << 20, `tarball ${pack.size} bytes > 1 MiB`);
  const paths = pack.files.map((f) => f.path);
  for (const p of ["package.json", "README.md", "bin/cicada.js", "bin/lambda-handler.js"]) {
    assert.ok(paths.includes(p), `${p} is shipped`);
  }
  for (const entry of ["index", "serve/index", "tools", "cli/main", "runtime/stage-worker"]) {
    assert.ok(paths.includes(`dist/${entry}.js`), `dist/${entry}.js is shipped`);
    assert.ok(paths.includes(`dist/${entry}.d.ts`), `dist/${entry}.d.ts is shipped`);
  }
  const unwanted = paths.filter((p) => /^(src|test|bench|docs|deploy|examples)\/|\.tsbuildinfo$/.test(p));
  assert.deepEqual(unwanted, [], "no sources, tests, bench results, docs or build state");
});

test(
  "the installed package runs the README's example with plain node, and the compiled cicada command",
  { timeout: 240_000 },
  async () => {
    const { dir } = await consumer();
    const modelDir = join(work, "model");
    const model = await generateZooModel("tiny-resnet", modelDir, { seed: 3 });
    const bundleDir = join(work, "bundle");
    await importModel(model.modelPath, bundleDir, { stages: 3 });
    const env = { CICADA_CACHE: join(work, "cache") };
    await copyFile(join(ROOT, "examples", "run-bundle.mjs"), join(dir, "run-bundle.mjs"));
    // As written: it must exit by itself (runtime.close()), so the timeout is what fails a hang.
    const r = await run(process.execPath, ["run-bundle.mjs", bundleDir], dir, env, 60_000);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.at(-1), "cold start");
    const m = /^logits: float32 \[1, 10\] (.+)$/.exec(lines[0]!);
    assert.ok(m, `first line names the output: ${r.stdout}`);
    const printed = m[1]!.split(" ").map(Number);
    // The same request through plain onnxruntime on the original model.
    const { manifest } = await openBundle(bundleDir);
    const input = manifest.inputs[0]!;
    const dims = input.example.shape;
    const data = new Float32Array(dims.reduce((n, d) => n * d, 1)).fill(0.5);
    const eager = await runEager(model.modelPath, { [input.name]: { dtype: "float32", dims, data } });
    const expected = Array.from(eager.outputs.logits!.data.slice(0, 4), Number);
    printed.forEach((v, i) =>
      assert.ok(Math.abs(v - expected[i]!) < 1e-4, `logits[${i}] ${v} vs ${expected[i]}`),
    );

    const bin = join(dir, "node_modules", ".bin", "cicada");
    const help = await run(bin, ["--help"], dir, env);
    for (const command of ["run", "serve", "bench", "import"])
      assert.match(help.stdout, new RegExp(`\\b${command}\\b`));
    const inspect = await run(bin, ["inspect", bundleDir, "--json"], dir, env);
    assert.equal((JSON.parse(inspect.stdout) as { stages: unknown[] }).stages.length, 3);
  },
);

const CONSUMER_TS = `
import { createRuntime, loadModel, CicadaError, type HostTensor, type LoadedModel } from "cicada-node";
import { startInstance, listen } from "cicada-node/serve";
import { importModel, generateZooModel } from "cicada-node/tools";

export async function answer(bundle: string): Promise<number[]> {
  const runtime = await createRuntime({ workers: 1 });
  try {
    const model: LoadedModel = await loadModel(runtime, bundle, { strategy: "cicada" });
    const input = model.manifest.inputs[0];
    if (!input) throw new CicadaError("E_USAGE", "no inputs");
    const dims = input.example.shape;
    const feed: HostTensor = { dtype: "float32", dims, data: new Float32Array(dims.reduce((n, d) => n * d, 1)) };
    const { outputs } = await model.run({ [input.name]: feed });
    await model.dispose();
    return Object.values(outputs).map((t) => t.dims.length);
  } finally {
    await runtime.close();
  }
}
export const entries = [startInstance, listen, importModel, generateZooModel];
`;

for (const resolution of ["nodenext", "bundler"] as const) {
  test(
    `a strict TypeScript consumer type-checks (moduleResolution ${resolution})`,
    { timeout: 240_000 },
    async () => {
      const { dir } = await consumer();
      const project = join(dir, `ts-${resolution}`);
      await mkdir(project, { recursive: true });
      await writeFile(join(project, "consumer.ts"), CONSUMER_TS);
      // The default lib of the target (with the DOM), no skipLibCheck: our declarations are checked too.
      const compilerOptions = {
        target: "ES2022",
        module: resolution === "nodenext" ? "nodenext" : "preserve",
        moduleResolution: resolution,
        strict: true,
        noUncheckedIndexedAccess: true,
        exactOptionalPropertyTypes: true,
        skipLibCheck: false,
        noEmit: true,
        types: ["node"],
        typeRoots: [join(ROOT, "node_modules", "@types")],
      };
      await writeFile(join(project, "package.json"), JSON.stringify({ type: "module" }));
      await writeFile(
        join(project, "tsconfig.json"),
        JSON.stringify({ compilerOptions, files: ["consumer.ts"] }),
      );
      await run(process.execPath, [TSC, "-p", project], project);
    },
  );
}

test(
  "the consumer resolves the package's entry points to the bundles in dist/bundle/",
  { timeout: 240_000 },
  async () => {
    const { dir } = await consumer();
    const script = `for (const e of ["cicada-node", "cicada-node/serve", "cicada-node/tools", "cicada-node/package.json"]) console.log(import.meta.resolve(e));`;
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], dir);
    const resolved = stdout.trim().split("\n");
    const base = `file://${join(dir, "node_modules", "cicada-node")}/`;
    assert.deepEqual(
      resolved.map((u) => u.slice(base.length)),
      ["dist/bundle/index.js", "dist/bundle/serve.js", "dist/bundle/tools.js", "package.json"],
    );
    const pkg = JSON.parse(
      await readFile(join(dir, "node_modules", "cicada-node", "package.json"), "utf8"),
    ) as {
      dependencies: Record<string, string>;
    };
    assert.equal(pkg.dependencies.tsx, undefined, "tsx is not a runtime dependency");
  },
);

test("the README's runtime API example is examples/run-bundle.mjs, which the test above runs", async () => {
  const readme = await readFile(join(ROOT, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## The runtime API"));
  const block = /```js\n([\s\S]*?)```/.exec(section)?.[1];
  const example = await readFile(join(ROOT, "examples", "run-bundle.mjs"), "utf8");
  assert.equal(block, example.slice(example.indexOf("import {")));
});

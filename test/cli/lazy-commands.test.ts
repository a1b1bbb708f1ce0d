// The `cicada` command loads only the command it runs: the root help lists every command from
// command-table.ts without loading any (and lists them exactly as their modules register them), and the
// compiled command, as installed, loads neither onnxruntime nor the runtime, the server or protobufjs for
// `--help` or `inspect`. Module loads are recorded by a module resolution hook in the child process.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  addAllCommands,
  addCommands,
  COMMANDS,
  commandOf,
  rootCommand,
} from "../../src/cli/command-table.js";
import { ensureBuilt, ROOT } from "../support/build.js";

const dir = await mkdtemp(join(tmpdir(), "cicada-lazy-commands-"));
test.after(() => rm(dir, { recursive: true, force: true }));

test("the root help from the table is the help the commands register, and names each command", async () => {
  const lazy = rootCommand();
  await addCommands(lazy, undefined);
  const eager = rootCommand();
  await addAllCommands(eager);
  assert.equal(lazy.helpInformation(), eager.helpInformation());
  assert.deepEqual(
    eager.commands.map((c) => c.name()),
    COMMANDS.map((c) => c.name),
  );
  // With one command loaded, the others still listed: the same help again.
  const one = rootCommand();
  await addCommands(one, "run");
  assert.equal(one.helpInformation(), eager.helpInformation());
});

test("commandOf finds the command to load", () => {
  assert.equal(commandOf([]), undefined);
  assert.equal(commandOf(["--help"]), undefined);
  assert.equal(commandOf(["-V"]), undefined);
  assert.equal(commandOf(["run", "b", "--strategy", "cicada"]), "run");
  assert.equal(commandOf(["--help", "inspect"]), "inspect");
  assert.equal(commandOf(["help", "serve"]), "serve");
  assert.equal(commandOf(["help"]), undefined);
});

/** Runs the compiled `cicada ARGS`, recording every module URL it resolves. */
async function traced(args: string[]): Promise<{ code: number; stdout: string; modules: string[] }> {
  const log = join(dir, `modules-${args.join("-").replace(/\W+/g, "_")}.txt`);
  await writeFile(log, "");
  const hooks = join(dir, "hooks.mjs");
  await writeFile(
    hooks,
    `import { appendFileSync } from "node:fs";
let log;
export function initialize(data) { log = data.log; }
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(log, r.url + "\\n");
  return r;
}`,
  );
  const register = join(dir, `register-${args[0]?.replace(/\W+/g, "_")}.mjs`);
  await writeFile(
    register,
    `import { register } from "node:module";
register(${JSON.stringify(`file://${hooks}`)}, { data: { log: ${JSON.stringify(log)} } });`,
  );
  const bin = join(ROOT, "bin", "cicada.js");
  const r = await promisify(execFile)(process.execPath, ["--import", register, bin, ...args], {
    cwd: dir,
    timeout: 30_000,
  }).catch((e: { code: number; stdout: string; stderr: string }) => {
    throw new Error(`cicada ${args.join(" ")} exited ${e.code}:\n${e.stdout}\n${e.stderr}`);
  });
  const modules = (await readFile(log, "utf8")).split("\n").filter((u) => u.startsWith("file:"));
  return { code: 0, stdout: r.stdout, modules };
}

const HEAVY = /onnxruntime|protobufjs|\/dist\/(runtime|serve|bench|report|importer|zoo)\/|onnx-io/;

test(
  "the compiled cicada --help loads no command, no runtime and no onnxruntime",
  { timeout: 120_000 },
  async () => {
    await ensureBuilt();
    const { stdout, modules } = await traced(["--help"]);
    for (const c of COMMANDS) assert.match(stdout, new RegExp(`^  ${c.name} `, "m"));
    assert.ok(
      modules.some((u) => u.endsWith("/dist/cli/main.js")),
      "the trace sees the command's modules",
    );
    assert.deepEqual(
      modules.filter((u) => HEAVY.test(u) || u.includes("/dist/cli/commands/")),
      [],
    );
  },
);

test(
  "the compiled cicada loads only the command it runs (inspect: no runtime, no server)",
  { timeout: 120_000 },
  async () => {
    await ensureBuilt();
    const { stdout, modules } = await traced(["inspect", "--help"]);
    assert.match(stdout, /Usage: cicada inspect \[options\] <bundle>/);
    const commands = modules.filter((u) => u.includes("/dist/cli/commands/")).map((u) => u.split("/").pop());
    assert.deepEqual(commands, ["inspect.js"]);
    assert.deepEqual(
      modules.filter((u) => HEAVY.test(u)),
      [],
    );
    const help = await traced(["help", "run"]);
    assert.match(help.stdout, /Usage: cicada run \[options\] <target>/);
    assert.match(help.stdout, /--strategy/);
  },
);

// `cicada platform` and `cicada replay` through the real command, as a user runs them: the platform
// announces its port, serves, and stops on SIGTERM with its instances; a short synthetic replay writes its
// report; and the usage errors, each refused before anything starts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { CLI, cicada, json } from "../../support/cli.js";
import { alive, infer, tinyBundles, waitFor } from "./platform-fixtures.js";

const fx = await tinyBundles("cicada-platform-cli-");
const children: ReturnType<typeof spawn>[] = [];
test.after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  await fx.cleanup();
});
const env = { CICADA_CACHE: join(fx.root, "cache") };

test(
  "cicada platform: listening line, serves through the gateway, SIGTERM stops it and its instances",
  { timeout: 120_000 },
  async () => {
    const child = spawn(
      process.execPath,
      [
        ...CLI,
        "platform",
        "--models",
        `${fx.resnet},${fx.opt}`,
        "--instances",
        "2",
        "--port",
        "0",
        "--workers",
        "1",
      ],
      { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] },
    );
    children.push(child);
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line; stderr:\n${stderr}`)), 60_000);
      createInterface({ input: child.stdout }).once("line", (l) => {
        clearTimeout(timer);
        resolve(l);
      });
    });
    const listening = JSON.parse(line) as { event: string; host: string; port: number; pid: number };
    assert.equal(listening.event, "listening");
    assert.equal(listening.host, "127.0.0.1");
    assert.equal(listening.pid, child.pid);
    const url = `http://127.0.0.1:${listening.port}`;
    const r = await infer(url, fx.opt);
    assert.equal(r.status, 200, await r.clone().text());
    await r.arrayBuffer();
    const state = (await (await fetch(`${url}/v2/cicada/platform`)).json()) as {
      policy: string;
      instances: { pid: number }[];
    };
    assert.equal(state.policy, "keep-alive");
    const pids = state.instances.map((i) => i.pid);
    assert.equal(pids.length, 2);
    child.kill("SIGTERM");
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /SIGTERM: stopping/);
    await waitFor("the instances to exit", () => pids.every((p) => !alive(p)), 5000);
  },
);

test(
  "cicada replay --synthetic: the runs side by side, as a table, JSON and a report directory",
  { timeout: 120_000 },
  async () => {
    const out = join(fx.root, "replay-out");
    const r = await cicada(
      [
        "replay",
        "--synthetic",
        "--minutes",
        "2",
        "--time-scale",
        "40",
        "--max-invocations",
        "40",
        "--models",
        `${fx.resnet},${fx.opt}`,
        "--runs",
        "stateless:eager,keep-alive:cicada",
        "--instances",
        "1",
        "--workers",
        "1",
        "--json",
        "--out",
        out,
      ],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    const summary = json<{
      config: { trace: { source: string; invocations: number } };
      runs: { policy: string; strategy: string; summary: { sent: number; ok: number; coldStarts: number } }[];
    }>(r);
    assert.equal(summary.config.trace.source, "synthetic:seed=0");
    assert.deepEqual(
      summary.runs.map((x) => `${x.policy}:${x.strategy}`),
      ["stateless:eager", "keep-alive:cicada"],
    );
    const [stateless, keepAlive] = summary.runs as [(typeof summary.runs)[0], (typeof summary.runs)[0]];
    assert.equal(stateless.summary.sent, 40, "bounded by --max-invocations");
    assert.equal(stateless.summary.coldStarts, stateless.summary.ok, "stateless: every success was cold");
    assert.ok(keepAlive.summary.coldStarts <= 2, `keep-alive: ${keepAlive.summary.coldStarts} cold starts`);
    assert.match(r.stderr, /stateless x eager: \d+\/\d+ answered/);
    for (const f of ["replay.json", "report.md", "latency.svg", "memory.svg", "raw/stateless-eager.json"])
      assert.ok(existsSync(join(out, f)), f);
    assert.match(await readFile(join(out, "report.md"), "utf8"), /\| keep-alive × cicada \|/);
    const again = await cicada(["replay", "--report-from", out, "--out", join(fx.root, "replay-again")], env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /\| stateless × eager \| 40\/40 \|/);
    const md = await readFile(join(fx.root, "replay-again", "report.md"), "utf8");
    assert.match(md, /cicada replay --synthetic --minutes 2/);
    assert.match(md, /Drawn again from the raw data of/);
  },
);

test("usage errors are refused before anything starts", { timeout: 120_000 }, async () => {
  const cases: [string[], RegExp][] = [
    [["replay", "--models", fx.resnet], /exactly one of --trace <file> and --synthetic/],
    [["replay", "--synthetic", "--trace", "x.csv", "--models", fx.resnet], /exactly one of/],
    [["replay", "--synthetic", "--models", fx.resnet, "--policy", "sometimes"], /unknown policy 'sometimes'/],
    [
      ["replay", "--synthetic", "--models", fx.resnet, "--runs", "stateless"],
      /policy:strategy, found 'stateless'/,
    ],
    [
      ["replay", "--synthetic", "--models", fx.resnet, "--policy", "stateless,stateless"],
      /names 'stateless' twice/,
    ],
    [
      ["replay", "--synthetic", "--models", fx.resnet, "--time-scale", "0"],
      /--time-scale must be a positive/,
    ],
    [["replay", "--trace", join(fx.root, "none.csv"), "--models", fx.resnet], /does not exist/],
    [["replay", "--synthetic", "--models", "no-such-model"], /E_ZOO_UNKNOWN/],
    [
      ["replay", "--synthetic", "--models", `${fx.resnet},${fx.resnet}`],
      /--models names '.*tiny-resnet.bundle' twice/,
    ],
    [
      ["platform", "--models", fx.resnet, "--policy", "shared-weights", "--strategy", "eager"],
      /needs a strategy that maps/,
    ],
    [["platform", "--models", fx.resnet, "--instances", "0"], /--instances must be an integer from 1 to 64/],
    [["platform", "--port", "0"], /--models <list> is required/],
    [["replay", "--report-from", fx.root], /--report-from needs --out/],
    [
      ["platform", "--models", fx.resnet, "--host-memory-mb", "-5"],
      /--host-memory-mb must be a positive number/,
    ],
  ];
  for (const [args, message] of cases) {
    // Bounded even if a case were wrongly accepted.
    const r = await cicada([...args, ...(args[0] === "replay" ? ["--max-wall-s", "5"] : [])], env);
    assert.notEqual(r.code, 0, args.join(" "));
    assert.match(r.stderr, message, args.join(" "));
  }
});

// ONNX backend conformance over Debian's libonnx-testdata (the onnx `node` set and the `pytorch-converted`
// and `pytorch-operator` sets): every case plain onnxruntime runs is imported into a bundle and run with
// every strategy through the public API, with ONE cache root shared by the whole suite (a shared cache is
// what exposed cache keys that did not cover the graph: test_ConstantPad2d then test_ZeroPad2d gave cosine
// 0.14). Each case must end correct (the shipped outputs, NaN-aware, rtol 1e-3 / atol 1e-7 for floats,
// exact otherwise) or in a coded refusal; never a wrong output, an uncoded error, a crash or a hang. Cases
// run in supervised child processes (trust/supervisor.ts). `npm test` runs a seeded sample;
// CICADA_CONFORMANCE=full runs every case, CICADA_CONFORMANCE_SAMPLE=N and CICADA_CONFORMANCE_SEED=S change
// the sample, CICADA_CONFORMANCE_REPORT=FILE writes every case's outcome as JSON, CICADA_CONFORMANCE_STRICT=1
// also fails on a strategy's coded refusal of a case the importer took, CICADA_CONFORMANCE_STAGES=N imports
// with N stages where the model allows, CICADA_CONFORMANCE_CACHE=per-case (diagnosis) gives each case its
// own cache.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { STRATEGIES } from "../../src/config.js";
import { SeededRandom } from "../../src/util/seeded-random.js";
import type { CaseJob, CaseResult } from "./trust/conformance-child.js";
import { superviseJobs } from "./trust/supervisor.js";
import { summarizeConformance } from "./trust/conformance-summary.js";

const DATA = process.env.CICADA_ONNX_TESTDATA ?? "/usr/share/libonnx-testdata/data";
const SETS = ["node", "pytorch-converted", "pytorch-operator"];
/** A known regression pair run first in every sample: equal (empty) weights, different graphs. */
const REGRESSION = ["pytorch-converted/test_ConstantPad2d", "pytorch-converted/test_ZeroPad2d"];
const CHILD = fileURLToPath(new URL("./trust/conformance-child.ts", import.meta.url));

function allCases(): string[] {
  const ids: string[] = [];
  for (const set of SETS) {
    if (!existsSync(join(DATA, set))) continue;
    for (const name of readdirSync(join(DATA, set)).sort())
      if (existsSync(join(DATA, set, name, "model.onnx"))) ids.push(`${set}/${name}`);
  }
  return ids;
}

/** The cases to run: all, or the regression pair then a seeded sample of the rest (in seeded order). */
function selectCases(ids: string[]): string[] {
  if (process.env.CICADA_CONFORMANCE === "full") return ids;
  const size = Number(process.env.CICADA_CONFORMANCE_SAMPLE ?? 100);
  const random = new SeededRandom(Number(process.env.CICADA_CONFORMANCE_SEED ?? 13), "conformance");
  const rest = ids.filter((id) => !REGRESSION.includes(id));
  for (let i = rest.length - 1; i > 0; i--) {
    const j = Math.floor(random.next() * (i + 1));
    [rest[i], rest[j]] = [rest[j]!, rest[i]!];
  }
  const first = REGRESSION.filter((id) => ids.includes(id));
  return [...first, ...rest.slice(0, Math.max(0, size - first.length))];
}

const ids = allCases();

test(
  "ONNX backend conformance: every case onnxruntime runs is correct or refused with a code, through every strategy, with one shared cache",
  { skip: ids.length ? false : `no ONNX backend test data under ${DATA} (apt-get install libonnx-testdata)` },
  async () => {
    const cases = selectCases(ids);
    const root = await mkdtemp(join(tmpdir(), "cicada-conformance-"));
    try {
      const jobs: CaseJob[] = cases.map((id) => ({ id, dir: join(DATA, id), strategies: [...STRATEGIES] }));
      const outcomes = await superviseJobs<CaseJob, CaseResult>(CHILD, jobs, {
        timeoutMs: Number(process.env.CICADA_CONFORMANCE_TIMEOUT_MS ?? 60_000),
        maxRssBytes: 3 * 2 ** 30,
        args: [
          join(root, "cache"),
          root,
          process.env.CICADA_CONFORMANCE_CACHE ?? "shared",
          process.env.CICADA_CONFORMANCE_STAGES ?? "0",
        ],
      });
      const summary = summarizeConformance(outcomes);
      if (process.env.CICADA_CONFORMANCE_REPORT)
        await writeFile(
          process.env.CICADA_CONFORMANCE_REPORT,
          JSON.stringify({ summary, outcomes }, null, 2),
        );
      console.log(summary.lines.join("\n"));
      assert.equal(
        summary.failures.length,
        0,
        `${summary.failures.length} case(s) ended in a wrong output, an uncoded error, a crash or a hang:\n${summary.failures.slice(0, 40).join("\n")}`,
      );
      assert.ok(summary.tried > 0, "no case was tried: is onnxruntime working?");
      // Strict (the bar): a strategy refusing a case that the importer took and onnxruntime runs.
      if (process.env.CICADA_CONFORMANCE_STRICT === "1")
        assert.deepEqual(summary.refusals, [], "strategies refused cases that plain onnxruntime runs");
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  },
);

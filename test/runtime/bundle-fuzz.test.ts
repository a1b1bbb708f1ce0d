// The bundle fuzzer: a tiny three-stage bundle and its derived forms, mutated (the catalogue of hostile and
// corrupting edits in trust/fuzz-edits.ts, then seeded byte flips, bit flips, truncations and garbage
// appended to every file of the bundle and the cache), each mutant run with every strategy (eager,
// ort-best, pisel, mini, preload, cicada with the whole and the pipeline plan) in supervised child
// processes. Each run must end in the reference output (cosine >= 0.99999, NaN-aware) or a coded error;
// never a wrong output, an uncoded error, a read of a file outside the bundle (canaries), a crash, a hang or
// unbounded memory; a corrupt cache must be healed by the next load. The failures are collected and
// asserted to be none at the end. `npm test` runs the catalogue and byte mutants up to 80;
// CICADA_FUZZ_MUTANTS=N, CICADA_FUZZ_SEED=S, CICADA_FUZZ_ONLY=<id,...> (reproduce), CICADA_FUZZ_REPORT=FILE.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { MutantResult } from "./trust/fuzz-child.js";
import { layoutOf } from "./trust/fuzz-files.js";
import { fuzzMutants, type Mutant } from "./trust/fuzz-mutants.js";
import { summarizeFuzz } from "./trust/fuzz-summary.js";
import { superviseJobs } from "./trust/supervisor.js";

const CHILD = fileURLToPath(new URL("./trust/fuzz-child.ts", import.meta.url));

test("bundle fuzzer: every mutant, every strategy ends in the reference output or a coded error", async () => {
  const seed = Number(process.env.CICADA_FUZZ_SEED ?? 13);
  let mutants: Mutant[] = fuzzMutants(Number(process.env.CICADA_FUZZ_MUTANTS ?? 80), seed);
  const only = process.env.CICADA_FUZZ_ONLY?.split(",");
  if (only) mutants = mutants.filter((m) => only.includes(m.id));
  assert.ok(mutants.length > 0, `no mutant matches CICADA_FUZZ_ONLY=${only?.join(",")}`);
  const root = await mkdtemp(join(tmpdir(), "cicada-fuzz-"));
  await mkdir(layoutOf(root).work, { recursive: true });
  try {
    const outcomes = await superviseJobs<Mutant, MutantResult>(CHILD, mutants, {
      timeoutMs: Number(process.env.CICADA_FUZZ_TIMEOUT_MS ?? 60_000),
      maxRssBytes: 2 * 2 ** 30,
      args: [root],
      cwd: layoutOf(root).work,
      startTimeoutMs: 180_000,
    });
    const summary = summarizeFuzz(mutants, outcomes, seed);
    if (process.env.CICADA_FUZZ_REPORT)
      await writeFile(process.env.CICADA_FUZZ_REPORT, JSON.stringify({ summary, outcomes }, null, 2));
    console.log(summary.lines.join("\n"));
    assert.equal(
      summary.failures.length,
      0,
      `${summary.failures.length} failure(s):\n${summary.failures.slice(0, 60).join("\n")}`,
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

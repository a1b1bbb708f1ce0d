// Test helper of the bundle fuzzer: counts over every run (mutant x strategy) and the failure list, each
// failure with the mutant, the strategy, what happened and the command that reproduces it alone.
import type { Attempt, MutantResult, RunOutcome } from "./fuzz-child.js";
import type { Mutant } from "./fuzz-mutants.js";
import type { JobOutcome } from "./supervisor.js";

/** What a fuzz run found. */
export interface FuzzSummary {
  mutants: number;
  runs: number;
  correct: number;
  coded: number;
  codedByCode: Record<string, number>;
  wrong: number;
  uncoded: number;
  escapes: number;
  notHealed: number;
  crashes: number;
  hangs: number;
  memory: number;
  targetMissing: number;
  failures: string[];
  lines: string[];
}

const bump = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);
const list = (m: Record<string, number>) =>
  Object.entries(m)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n}`)
    .join(", ");

function describe(o: RunOutcome): string {
  switch (o.kind) {
    case "correct":
      return "correct";
    case "coded":
      return `${o.code}: ${o.message}`;
    case "wrong":
      return `wrong output: ${o.detail}`;
    case "uncoded":
      return `uncoded ${o.error.name}${o.error.code ? ` (${o.error.code})` : ""}: ${o.error.message}`;
  }
}

/** Counts the outcomes of a fuzz run of `mutants` with `seed`. */
export function summarizeFuzz(
  mutants: Mutant[],
  outcomes: JobOutcome<MutantResult>[],
  seed: number,
): FuzzSummary {
  const s: FuzzSummary = {
    mutants: outcomes.length,
    runs: 0,
    correct: 0,
    coded: 0,
    codedByCode: {},
    wrong: 0,
    uncoded: 0,
    escapes: 0,
    notHealed: 0,
    crashes: 0,
    hangs: 0,
    memory: 0,
    targetMissing: 0,
    failures: [],
    lines: [],
  };
  const byId = new Map(mutants.map((m) => [m.id, m]));
  const repro = (id: string) =>
    `CICADA_FUZZ_SEED=${seed} CICADA_FUZZ_MUTANTS=${mutants.length} CICADA_FUZZ_ONLY=${id} node --import tsx --test test/runtime/bundle-fuzz.test.ts`;
  for (const o of outcomes) {
    const what = byId.get(o.id)?.what ?? o.id;
    const fail = (strategy: string, happened: string) =>
      s.failures.push(`[${o.id}] ${what} | ${strategy} | ${happened} | repro: ${repro(o.id)}`);
    if (o.kind !== "done") {
      if (o.kind === "crash") s.crashes++;
      else if (o.kind === "hang") s.hangs++;
      else s.memory++;
      fail(o.phase, `${o.kind}: ${o.detail}`);
      continue;
    }
    const r = o.result as MutantResult | { thrown: { message: string } };
    if ("thrown" in r) {
      s.uncoded++;
      fail("(harness)", `the mutant threw outside any strategy: ${r.thrown.message}`);
      continue;
    }
    if (r.status === "target-missing") {
      s.targetMissing++;
      fail("(harness)", `mutation target missing (update the catalogue): ${r.detail}`);
      continue;
    }
    for (const a of r.attempts) countAttempt(s, a, (h) => fail(a.plan, `${r.applied}: ${h}`));
  }
  s.lines = [
    `fuzz: ${s.mutants} mutants, ${s.runs} runs (mutant x strategy): correct ${s.correct}, coded errors ${s.coded} (${list(s.codedByCode) || "none"}), wrong ${s.wrong}, uncoded errors ${s.uncoded}, escapes ${s.escapes}, not healed ${s.notHealed}, crashes ${s.crashes}, hangs ${s.hangs}, memory ${s.memory}, targets missing ${s.targetMissing}`,
  ];
  return s;
}

function countAttempt(s: FuzzSummary, a: Attempt, fail: (happened: string) => void): void {
  s.runs++;
  const o = a.outcome;
  if (o.kind === "correct") s.correct++;
  else if (o.kind === "coded") {
    s.coded++;
    bump(s.codedByCode, o.code);
  } else if (o.kind === "wrong") {
    s.wrong++;
    fail(describe(o));
  } else {
    s.uncoded++;
    fail(describe(o));
  }
  if (a.escaped.length) {
    s.escapes++;
    fail(`read outside the bundle: ${a.escaped.join("; ")} (run ended: ${describe(o).slice(0, 200)})`);
  }
  if (a.heal && a.heal.kind !== "correct") {
    s.notHealed++;
    fail(`not healed: the next load ended in ${describe(a.heal)} (first load: ${describe(o).slice(0, 160)})`);
  }
}

// Test helper of the conformance suite: the counts of a run (tried, correct, refused by code, skipped by
// reason, wrong, uncoded, crashes, hangs; per strategy too) and the list of failures, i.e. every case that
// ended in a wrong output, an uncoded error, a crash or a hang anywhere past plain onnxruntime's own run.
import type { CaseResult, StrategyOutcome } from "./conformance-child.js";
import type { JobOutcome } from "./supervisor.js";

/** What a run of the suite found. */
export interface ConformanceSummary {
  cases: number;
  /** Cases plain onnxruntime runs (the importer and the strategies were tried on them). */
  tried: number;
  correct: number;
  /** Cases refused with a code somewhere (importer or a strategy), and nothing wrong. */
  refused: number;
  refusedByCode: Record<string, number>;
  skipped: number;
  skippedByReason: Record<string, number>;
  wrong: number;
  uncoded: number;
  crashes: number;
  hangs: number;
  /** Cases where onnxruntime itself disagrees with the shipped outputs (compared with onnxruntime's instead). */
  ortDiffers: number;
  perStrategy: Record<string, Record<string, number>>;
  failures: string[];
  /** Runtime refusals of cases onnxruntime runs: not failures of the suite, but worth reading. */
  refusals: string[];
  lines: string[];
}

const bump = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);
const list = (m: Record<string, number>) =>
  Object.entries(m)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n}`)
    .join(", ");

/** Phases in which a crash or hang belongs to plain onnxruntime (or the harness reading test data). */
const REFERENCE_PHASES = new Set(["read", "eager reference"]);

function strategyKey(o: StrategyOutcome): string {
  return o.kind === "refused" ? `refused ${o.code}` : o.kind;
}

/** Counts the outcomes of a conformance run. */
export function summarizeConformance(outcomes: JobOutcome<CaseResult>[]): ConformanceSummary {
  const s: ConformanceSummary = {
    cases: outcomes.length,
    tried: 0,
    correct: 0,
    refused: 0,
    refusedByCode: {},
    skipped: 0,
    skippedByReason: {},
    wrong: 0,
    uncoded: 0,
    crashes: 0,
    hangs: 0,
    ortDiffers: 0,
    perStrategy: {},
    failures: [],
    refusals: [],
    lines: [],
  };
  for (const o of outcomes) {
    if (o.kind !== "done") {
      if (REFERENCE_PHASES.has(o.phase)) {
        s.skipped++;
        bump(s.skippedByReason, `onnxruntime cannot run (${o.kind})`);
        continue;
      }
      s.tried++;
      if (o.kind === "crash") s.crashes++;
      else s.hangs++;
      s.failures.push(`${o.id}: ${o.kind} during ${o.phase}: ${o.detail}`);
      continue;
    }
    const r = o.result as CaseResult | { thrown: { message: string } };
    if ("thrown" in r) {
      s.tried++;
      s.uncoded++;
      s.failures.push(`${o.id}: the case threw outside any strategy: ${r.thrown.message}`);
      continue;
    }
    switch (r.status) {
      case "skipped":
        s.skipped++;
        bump(s.skippedByReason, r.reason);
        break;
      case "import-refused":
        s.tried++;
        s.refused++;
        bump(s.refusedByCode, `import ${r.code}`);
        break;
      case "import-uncoded":
        s.tried++;
        s.uncoded++;
        s.failures.push(`${o.id}: import threw without a code: ${r.error.name}: ${r.error.message}`);
        break;
      case "tried": {
        s.tried++;
        if (r.reference === "eager") s.ortDiffers++;
        const entries = Object.entries(r.strategies);
        let bad = false;
        let refused = false;
        for (const [name, so] of entries) {
          bump((s.perStrategy[name] ??= {}), strategyKey(so));
          if (so.kind === "wrong") {
            bad = true;
            s.failures.push(`${o.id}: ${name} gave a wrong output: ${so.detail}`);
          } else if (so.kind === "uncoded") {
            bad = true;
            s.failures.push(`${o.id}: ${name} threw without a code: ${so.error.name}: ${so.error.message}`);
          } else if (so.kind === "refused") {
            refused = true;
            bump(s.refusedByCode, so.code);
            s.refusals.push(`${o.id}: ${name} refused ${so.code}: ${so.message.slice(0, 200)}`);
          }
        }
        if (entries.some(([, so]) => so.kind === "wrong")) s.wrong++;
        else if (entries.some(([, so]) => so.kind === "uncoded")) s.uncoded++;
        if (bad) break;
        if (refused) s.refused++;
        else s.correct++;
        break;
      }
    }
  }
  s.lines = [
    `conformance: ${s.cases} cases: tried ${s.tried}, correct ${s.correct}, refused ${s.refused} (${list(s.refusedByCode) || "none"}), skipped ${s.skipped} (${list(s.skippedByReason) || "none"}), wrong ${s.wrong}, uncoded errors ${s.uncoded}, crashes ${s.crashes}, hangs ${s.hangs}; onnxruntime disagrees with the shipped outputs on ${s.ortDiffers} (compared with onnxruntime's)`,
    ...Object.entries(s.perStrategy).map(([name, m]) => `  ${name}: ${list(m)}`),
    ...(s.refusals.length
      ? [`  runtime refusals of cases onnxruntime runs (first 15 of ${s.refusals.length}):`]
      : []),
    ...s.refusals.slice(0, 15).map((l) => `    ${l}`),
  ];
  return s;
}

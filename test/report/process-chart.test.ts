// The process scenario's figure: well-formed SVG with one bar per contestant and panel, its parts in
// order and the ratio to ort-best beside it, drawn from a summary as `cicada bench --scenario process` writes.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { ProcessBenchSummary, ProcessResult } from "../../src/bench/process-bench.js";
import { processChart } from "../../src/report/process-chart.js";
import { xmlProblem } from "./xml-check.js";

function result(contestant: ProcessResult["contestant"], first: number, ratio: number): ProcessResult {
  const summary = { median: first, p10: first, p90: first, min: first, max: first, n: 3 };
  return {
    contestant,
    handler: contestant === "cicada" ? "cicada" : contestant === "eager" ? "eager" : "ort-best",
    firstOutput: summary,
    exit: { ...summary, median: first + 20 },
    breakdown: {
      nodeStart: 55,
      inputs: 1,
      import: 14,
      runtimeStart: 0.2,
      load: 20,
      firstRun: first - 90,
      write: 1,
      exit: 20,
    },
    ratioToEager: 1,
    ratioToOrtBest: ratio,
    cosineMin: 1,
  };
}

test("the process chart: a panel per model and cache, a bar per contestant, the ratio beside it", () => {
  const summaries = (["warm", "cold"] as const).map(
    (cache) =>
      ({
        model: "resnet50",
        cache,
        repeat: 3,
        results: [result("eager", 320, 2.5), result("ort-best", 130, 1), result("cicada", 150, 1.12)],
      }) as unknown as ProcessBenchSummary,
  );
  const svg = processChart(summaries);
  assert.equal(xmlProblem(svg), undefined);
  assert.match(svg, /resnet50, weights in page cache/);
  assert.match(svg, /resnet50, weights evicted/);
  assert.match(svg, /150 ms · 1\.12x/);
  assert.equal((svg.match(/cicada: first run/g) ?? []).length, 2, "one cicada bar per panel");
});

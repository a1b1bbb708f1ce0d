import { test } from "node:test";
import assert from "node:assert/strict";
import { ganttSvg } from "../../src/report/gantt.js";

test("the Gantt chart has one bar per unit task, coloured by stage, with a readable tooltip", () => {
  const svg = ganttSvg(
    {
      requestStart: 100,
      requestEnd: 150,
      events: [
        { unit: "R", stage: 0, worker: "main", start: 100, end: 110, bytes: 2 ** 20 },
        { unit: "A", stage: 0, worker: "worker-0", start: 110, end: 120, bytes: 0 },
        { unit: "E", stage: 1, worker: "worker-1", start: 130, end: 150, bytes: 0 },
      ],
    },
    "t <1>",
  );
  assert.match(svg, /^<svg /);
  assert.equal(svg.match(/<rect x=/g)?.length, 3);
  assert.match(svg, /R0 on main: 10\.00 ms, 1\.0 MiB/);
  assert.match(svg, /t &lt;1&gt;/);
  // Stage 0 and stage 1 get different colours.
  assert.ok(svg.includes('fill="#4e79a7"') && svg.includes('fill="#f28e2b"'));
});

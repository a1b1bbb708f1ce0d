// The process scenario drawn: one panel per model and cache setting, one horizontal bar per contestant
// stacked from its parts (node start, import, runtime start, load, first run), ending where the first
// output came, with the ratio to ort-best's script beside it. Where a fresh process spends its time is
// easier seen than read from the breakdown table.
import type { ProcessBenchSummary, ProcessResult } from "../bench/process-bench.js";
import { bar, GRID, INK, MUTED, PALETTE, text, type Box, type Panel } from "./svg-chart.js";
import { linearScale } from "./svg-scales.js";
import { xAxis, type LegendItem } from "./svg-axes.js";
import { figure } from "./svg-figure.js";

/** The parts drawn, in order from spawn to first output. */
const PARTS = [
  ["nodeStart", "node start"],
  ["inputs", "inputs"],
  ["import", "import"],
  ["runtimeStart", "createRuntime"],
  ["load", "load"],
  ["firstRun", "first run"],
] as const;

const LABEL_WIDTH = 150;
const RATIO_WIDTH = 96;

function panelOf(s: ProcessBenchSummary, maxMs: number): Panel {
  return (box: Box) => {
    const plot = {
      x: box.x + LABEL_WIDTH,
      y: box.y + 28,
      width: box.width - LABEL_WIDTH - RATIO_WIDTH - 12,
      height: box.height - 70,
    };
    const scale = linearScale(0, maxMs, plot.x, plot.x + plot.width);
    const out = [
      text(box.x + 8, box.y + 16, `${s.model}, weights ${s.cache === "warm" ? "in page cache" : "evicted"}`, {
        weight: "bold",
      }),
      ...xAxis(scale, plot, "ms from spawn (medians)"),
    ];
    const rowHeight = plot.height / s.results.length;
    s.results.forEach((r: ProcessResult, i) => {
      const y = plot.y + i * rowHeight + rowHeight * 0.2;
      const h = rowHeight * 0.6;
      out.push(text(plot.x - 8, y + h / 2 + 4, r.contestant, { anchor: "end", fill: INK }));
      let at = 0;
      PARTS.forEach(([key, label], k) => {
        const ms = r.breakdown[key];
        if (!(ms > 0)) return;
        const x0 = scale.map(at);
        const title = `${r.contestant}: ${label} ${ms.toFixed(1)} ms`;
        out.push(bar(x0, y, scale.map(at + ms) - x0, h, `fill="${PALETTE[k % PALETTE.length]}"`, title));
        at += ms;
      });
      // The measured first output (spawn to output): the parts' medians need not add up to it exactly.
      const first = scale.map(r.firstOutput.median);
      out.push(
        `<line x1="${first}" y1="${y - 3}" x2="${first}" y2="${y + h + 3}" stroke="${INK}" stroke-width="2"/>`,
      );
      const ratio = r.contestant === "ort-best" ? "1.00x" : `${r.ratioToOrtBest.toFixed(2)}x`;
      out.push(
        text(plot.x + plot.width + 10, y + h / 2 + 4, `${r.firstOutput.median.toFixed(0)} ms · ${ratio}`, {
          fill: MUTED,
          size: 11,
        }),
      );
    });
    out.push(
      `<rect x="${box.x}" y="${box.y}" width="${box.width}" height="${box.height}" fill="none" stroke="${GRID}"/>`,
    );
    return out;
  };
}

/** The process scenario's figure (SVG) for one or more summaries. */
export function processChart(summaries: readonly ProcessBenchSummary[]): string {
  const maxMs = Math.max(...summaries.flatMap((s) => s.results.map((r) => r.firstOutput.median))) * 1.05;
  const legend: LegendItem[] = [
    ...PARTS.map(([, label], k) => ({ label, colour: PALETTE[k % PALETTE.length]! })),
    { label: "first output (median)", colour: INK, style: "line" as const },
  ];
  const machine = summaries[0]?.machine;
  return figure({
    title: "Cold start of a fresh process: exec → first output",
    subtitle: `cicada bench --scenario process, ${summaries[0]?.repeat ?? 0} interleaved rounds${machine ? `; ${machine.cpuModel}, ${machine.cores} cores, onnxruntime ${machine.ortVersion}, node ${machine.nodeVersion}` : ""}. Right of each bar: median first output and the ratio to plain onnxruntime's ort-best script (median of per-round ratios).`,
    legend,
    panels: summaries.map((s) => panelOf(s, maxMs)),
    columns: 1,
    panelWidth: 760,
    panelHeight: 60 + 42 * Math.max(...summaries.map((s) => s.results.length)),
  });
}

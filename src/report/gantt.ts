// The Gantt chart of one request (the paper's Fig. 15) as a self-contained SVG a browser shows: one row per
// unit (L, R, A, E), one bar per unit task, one colour per stage (numbered on the bar where it fits, and
// in the legend), time in milliseconds from the request's start on the x axis, the response marked.
// It lives in report/ (metrics measures the trace, report draws it) and writes its document and escapes
// its text with the report's SVG kit; its own stage palette and tick rule are kept so charts look as before.
import { UNITS, type Trace, type TraceEvent } from "../metrics/trace.js";
import { escapeXml, svgDocument } from "./svg-chart.js";

/** Distinct, readable colours for stages (cycled when there are more stages). */
const STAGE_PALETTE = [
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
];

const UNIT_NAMES: Record<string, string> = { L: "construct", R: "retrieve", A: "apply", E: "execute" };

/** A "nice" tick step (1, 2 or 5 × 10^k) for a span of `span` ms with about `count` ticks. */
function tickStep(span: number, count = 10): number {
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? power * 10;
}

const f1 = (v: number) => v.toFixed(1);

/** Splits a title into lines of at most `chars` characters, at spaces. */
function wrap(title: string, chars: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of title.split(" ")) {
    if (line && line.length + 1 + word.length > chars) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line];
}

/**
 * Lanes for the tasks of one unit: tasks that overlap in time (on different workers) get different lanes,
 * so that none hides another. Greedy, in start order: the first lane free at the task's start.
 */
function assignLanes(events: readonly TraceEvent[]): { lanes: number; lane: Map<TraceEvent, number> } {
  const ends: number[] = [];
  const lane = new Map<TraceEvent, number>();
  for (const e of [...events].sort((a, b) => a.start - b.start)) {
    let i = ends.findIndex((end) => end <= e.start);
    if (i < 0) i = ends.push(e.end) - 1;
    else ends[i] = e.end;
    lane.set(e, i);
  }
  return { lanes: Math.max(1, ends.length), lane };
}

/** Renders `trace` as an SVG document titled `title`. */
export function ganttSvg(trace: Trace, title: string, width = 960): string {
  const left = 100;
  const right = 24;
  // Bold 14 px Helvetica averages ~7.6 px a character.
  const titleLines = wrap(title, Math.floor((width - 32) / 7.6));
  const top = 40 + titleLines.length * 18;
  const laneHeight = 22;
  const rows = UNITS.map((unit) => {
    const events = trace.events.filter((e) => e.unit === unit);
    return { unit, events, ...assignLanes(events) };
  });
  const t0 = trace.requestStart;
  const span = Math.max(trace.requestEnd - t0, ...trace.events.map((e) => e.end - t0), 1e-3);
  const scale = (width - left - right) / span;
  const bottom = top + rows.reduce((h, r) => h + r.lanes * laneHeight + 8, 0);
  const stages = [...new Set(trace.events.map((e) => e.stage))].sort((a, b) => a - b);
  // One legend entry per colour: with more stages than colours, an entry names every stage it stands for.
  const entries = STAGE_PALETTE.map((colour, k) => ({
    colour,
    label: `stage ${stages.filter((s) => s % STAGE_PALETTE.length === k).join(", ")}`,
  })).filter((e) => e.label !== "stage ");
  const entryWidth = Math.max(84, ...entries.map((e) => 30 + e.label.length * 7));
  const perLine = Math.max(1, Math.floor((width - left - right) / entryWidth));
  const height = bottom + 58 + Math.ceil(entries.length / perLine) * 20;
  const parts: string[] = [
    ...titleLines.map(
      (l, i) =>
        `<text x="16" y="${24 + i * 18}" font-size="14" font-weight="bold" fill="#222222">${escapeXml(l)}</text>`,
    ),
  ];
  const step = tickStep(span);
  for (let t = 0; t <= span + step * 1e-9; t += step) {
    const x = f1(left + t * scale);
    parts.push(
      `<line x1="${x}" y1="${top - 4}" x2="${x}" y2="${bottom}" stroke="#e4e4e4"/>`,
      `<text x="${x}" y="${bottom + 16}" text-anchor="middle" font-size="11" fill="#5a5a5a">${+t.toFixed(3)}</text>`,
    );
  }
  parts.push(
    `<text x="${f1(left + (width - left - right) / 2)}" y="${bottom + 34}" text-anchor="middle" fill="#222222">ms since the request's trace started</text>`,
  );
  let y = top;
  for (const { unit, events, lanes, lane } of rows) {
    const rowHeight = lanes * laneHeight + 8;
    parts.push(
      `<text x="${left - 10}" y="${f1(y + rowHeight / 2 + 4)}" text-anchor="end" font-weight="bold" fill="#222222">${unit} ${UNIT_NAMES[unit]}</text>`,
    );
    if (y > top)
      parts.push(`<line x1="${left}" y1="${y}" x2="${width - right}" y2="${y}" stroke="#f0f0f0"/>`);
    for (const e of events) {
      const x = left + (e.start - t0) * scale;
      const w = Math.max(1, (e.end - e.start) * scale);
      const by = y + 4 + lane.get(e)! * laneHeight;
      const colour = STAGE_PALETTE[e.stage % STAGE_PALETTE.length]!;
      const label = `${unit}${e.stage} on ${e.worker}: ${(e.end - e.start).toFixed(2)} ms${e.bytes ? `, ${(e.bytes / 2 ** 20).toFixed(1)} MiB` : ""}`;
      parts.push(
        `<rect x="${f1(x)}" y="${by + 1}" width="${f1(w)}" height="${laneHeight - 2}" fill="${colour}" stroke="white" stroke-width="0.5"><title>${escapeXml(label)}</title></rect>`,
      );
      if (w > 18)
        parts.push(
          `<text x="${f1(x + w / 2)}" y="${by + laneHeight / 2 + 4}" text-anchor="middle" fill="white" font-size="10">${e.stage}</text>`,
        );
    }
    y += rowHeight;
  }
  // The end of the request's trace: the run has resolved.
  const end = f1(left + (trace.requestEnd - t0) * scale);
  parts.push(
    `<line x1="${end}" y1="${top - 8}" x2="${end}" y2="${bottom + 2}" stroke="#222222" stroke-width="1.5" stroke-dasharray="4 3"/>`,
    `<text x="${end}" y="${top - 12}" text-anchor="end" font-size="11" fill="#222222" stroke="white" stroke-width="3" paint-order="stroke">run complete ${(trace.requestEnd - t0).toFixed(1)} ms</text>`,
  );
  // Stage legend; swatches are paths so that every <rect x=...> is a unit task.
  entries.forEach((entry, i) => {
    const x = left + (i % perLine) * entryWidth;
    const y = bottom + 58 + Math.floor(i / perLine) * 20;
    parts.push(
      `<path d="M${x} ${y - 10}h14v11h-14z" fill="${entry.colour}"/>`,
      `<text x="${x + 20}" y="${y}" fill="#222222">${entry.label}</text>`,
    );
  });
  return svgDocument(width, height, title, parts);
}

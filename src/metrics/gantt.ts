// The Gantt chart of one request (the paper's Fig. 15) as a self-contained SVG a browser shows: one row per
// unit (L, R, A, E), one bar per unit task, one colour per stage, time in milliseconds from the request's
// start on the x axis.
import { UNITS, type Trace } from "./trace.js";

/** Distinct, readable colours for stages (cycled when there are more stages). */
const PALETTE = [
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

function escapeXml(text: string): string {
  return text.replace(/[<>&"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;" })[c]!);
}

/** A "nice" tick step for a span of `span` ms with about `count` ticks. */
function tickStep(span: number, count = 8): number {
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? power * 10;
}

/** Renders `trace` as an SVG document titled `title`. */
export function ganttSvg(trace: Trace, title: string, width = 960): string {
  const left = 40;
  const right = 20;
  const top = 40;
  const rowHeight = 28;
  const t0 = trace.requestStart;
  const span = Math.max(trace.requestEnd - t0, ...trace.events.map((e) => e.end - t0), 1);
  const scale = (width - left - right) / span;
  const height = top + UNITS.length * rowHeight + 50;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="20" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
  );
  const step = tickStep(span);
  for (let t = 0; t <= span; t += step) {
    const x = left + t * scale;
    parts.push(
      `<line x1="${x.toFixed(1)}" y1="${top - 4}" x2="${x.toFixed(1)}" y2="${top + UNITS.length * rowHeight}" stroke="#ddd"/>`,
      `<text x="${x.toFixed(1)}" y="${top + UNITS.length * rowHeight + 16}" text-anchor="middle" fill="#555">${+t.toFixed(3)}</text>`,
    );
  }
  parts.push(
    `<text x="${width - right}" y="${top + UNITS.length * rowHeight + 32}" text-anchor="end" fill="#555">ms since the request started</text>`,
  );
  UNITS.forEach((unit, row) => {
    const y = top + row * rowHeight;
    parts.push(
      `<text x="${left - 10}" y="${y + rowHeight / 2 + 4}" text-anchor="end" font-weight="bold">${unit}</text>`,
    );
    for (const e of trace.events.filter((ev) => ev.unit === unit)) {
      const x = left + (e.start - t0) * scale;
      const w = Math.max(1, (e.end - e.start) * scale);
      const colour = PALETTE[e.stage % PALETTE.length]!;
      const label = `${unit}${e.stage} on ${e.worker}: ${(e.end - e.start).toFixed(2)} ms${e.bytes ? `, ${(e.bytes / 2 ** 20).toFixed(1)} MiB` : ""}`;
      parts.push(
        `<rect x="${x.toFixed(1)}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowHeight - 8}" fill="${colour}" stroke="white" stroke-width="0.5"><title>${escapeXml(label)}</title></rect>`,
      );
      if (w > 18)
        parts.push(
          `<text x="${(x + w / 2).toFixed(1)}" y="${y + rowHeight / 2 + 4}" text-anchor="middle" fill="white" font-size="10">${e.stage}</text>`,
        );
    }
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

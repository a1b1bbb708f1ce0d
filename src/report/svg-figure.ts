// The SVG kit's figure: a title, a subtitle, a legend, panels in a grid and notes under them, composed
// into one self-contained document (svg-chart.ts's svgDocument); the panels themselves are svg-panels.ts's.
import { MUTED, svgDocument, text, wrapText, type Panel } from "./svg-chart.js";
import { legend, type LegendItem } from "./svg-axes.js";

/** A figure: a title, a subtitle, a legend, panels in a grid and notes under them. */
export interface FigureSpec {
  title: string;
  subtitle?: string;
  legend?: LegendItem[];
  panels: Panel[];
  columns?: number;
  panelWidth?: number;
  panelHeight?: number;
  notes?: string[];
}

const MIN_FIGURE_WIDTH = 640;

/** Renders a figure as a complete SVG document. */
export function figure(spec: FigureSpec): string {
  const columns = Math.max(1, Math.min(spec.columns ?? 3, spec.panels.length));
  const margin = 16;
  // A figure of one or two panels is not narrower than its title and legend need.
  const pw = Math.max(spec.panelWidth ?? 420, (MIN_FIGURE_WIDTH - 2 * margin) / columns);
  const ph = spec.panelHeight ?? 320;
  const width = columns * pw + 2 * margin;
  const body: string[] = [];
  let y = 26;
  for (const l of wrapText(spec.title, width - 2 * margin, 16, true)) {
    body.push(text(margin, y, l, { size: 16, weight: "bold" }));
    y += 20;
  }
  for (const l of spec.subtitle ? wrapText(spec.subtitle, width - 2 * margin, 12) : []) {
    body.push(text(margin, y, l, { fill: MUTED }));
    y += 16;
  }
  if (spec.legend?.length) {
    const lg = legend(spec.legend, margin, y, width - 2 * margin);
    body.push(...lg.svg);
    y += lg.height;
  }
  y += 6;
  const rows = Math.ceil(spec.panels.length / columns);
  spec.panels.forEach((panel, i) => {
    const box = {
      x: margin + (i % columns) * pw,
      y: y + Math.floor(i / columns) * ph,
      width: pw,
      height: ph,
    };
    body.push(`<g>`, ...panel(box), `</g>`);
  });
  y += rows * ph + 8;
  for (const note of spec.notes ?? []) {
    for (const l of wrapText(note, width - 2 * margin, 11)) {
      body.push(text(margin, y + 4, l, { size: 11, fill: MUTED }));
      y += 15;
    }
  }
  return svgDocument(width, y + 10, spec.title, body);
}

// The SVG kit's axes and legends: grid lines, tick labels and axis labels drawn from a scale
// (svg-scales.ts) around a plot box, and legends of coloured swatches that wrap within a width.
import { boxPath, GRID, line, MUTED, r1, text, textWidth, type Box } from "./svg-chart.js";
import type { Scale } from "./svg-scales.js";

const TICK_SIZE = 11;

/** Width a y axis needs left of the plot: tick labels plus the rotated axis label. */
export function yAxisWidth(scale: Scale): number {
  return Math.max(...scale.ticks.map((t) => textWidth(scale.format(t), TICK_SIZE))) + 30;
}

/** Horizontal grid lines, tick labels and the rotated label of a y axis at the left of `plot`. */
export function yAxis(scale: Scale, plot: Box, label: string): string[] {
  const out: string[] = [];
  for (const t of scale.ticks) {
    const y = scale.map(t);
    out.push(line(plot.x, y, plot.x + plot.width, y, GRID));
    out.push(text(plot.x - 6, y + 4, scale.format(t), { size: TICK_SIZE, anchor: "end", fill: MUTED }));
  }
  out.push(line(plot.x, plot.y, plot.x, plot.y + plot.height, "#999999"));
  const x = plot.x - yAxisWidth(scale) + 12;
  out.push(text(x, plot.y + plot.height / 2, label, { anchor: "middle", rotate: -90 }));
  return out;
}

/** Vertical grid lines, tick labels and the label of an x axis under `plot`. */
export function xAxis(scale: Scale, plot: Box, label: string): string[] {
  const out: string[] = [];
  const bottom = plot.y + plot.height;
  for (const t of scale.ticks) {
    const x = scale.map(t);
    out.push(line(x, plot.y, x, bottom, GRID));
    out.push(text(x, bottom + 15, scale.format(t), { size: TICK_SIZE, anchor: "middle", fill: MUTED }));
  }
  out.push(line(plot.x, bottom, plot.x + plot.width, bottom, "#999999"));
  out.push(text(plot.x + plot.width / 2, bottom + 34, label, { anchor: "middle" }));
  return out;
}

/** How a legend item is drawn: a filled box, a light (translucent) box, a line, a dashed line or a dot. */
export type LegendStyle = "box" | "light" | "line" | "dash" | "point";

/** One legend entry. */
export interface LegendItem {
  label: string;
  colour: string;
  style?: LegendStyle;
}

const LEGEND_SIZE = 12;

function swatch(item: LegendItem, x: number, y: number): string {
  switch (item.style ?? "box") {
    case "box":
      return boxPath(x, y - 9, 14, 11, `fill="${item.colour}"`);
    case "light":
      return boxPath(x, y - 9, 14, 11, `fill="${item.colour}" fill-opacity="0.35" stroke="${item.colour}"`);
    case "line":
      return line(x, y - 3.5, x + 16, y - 3.5, item.colour, `stroke-width="2.5"`);
    case "dash":
      return line(x, y - 3.5, x + 16, y - 3.5, item.colour, `stroke-width="1.5" stroke-dasharray="4 3"`);
    case "point":
      return `<circle cx="${r1(x + 7)}" cy="${r1(y - 3.5)}" r="4" fill="${item.colour}"/>`;
  }
}

/** A legend laid out left to right from (x, y), wrapping within `maxWidth`; returns its height too. */
export function legend(items: readonly LegendItem[], x: number, y: number, maxWidth: number) {
  const svg: string[] = [];
  let cx = x;
  let cy = y + 12;
  for (const item of items) {
    const w = 22 + textWidth(item.label, LEGEND_SIZE) + 18;
    if (cx > x && cx + w > x + maxWidth) {
      cx = x;
      cy += 20;
    }
    svg.push(swatch(item, cx, cy), text(cx + 22, cy, item.label, { size: LEGEND_SIZE }));
    cx += w;
  }
  return { svg, height: items.length ? cy - y + 8 : 0 };
}

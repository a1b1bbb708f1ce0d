// The two kinds of plot panels the evaluation's figures are made of, drawn with the SVG kit (svg-*.ts):
// category panels (one group per category on x; in each group side-by-side items that are bars with
// whiskers, stacked bars or strips of points) and line panels (series over a linear x axis). Each panel
// lays itself out inside the box it is given: margins follow from its tick and category labels.
import {
  bar,
  GRID,
  INK,
  line,
  MUTED,
  text,
  textWidth,
  tooltip,
  wrapText,
  type Box,
  type Panel,
} from "./svg-chart.js";
import { linearScale, logScale, type Scale } from "./svg-scales.js";
import { xAxis, yAxis, yAxisWidth } from "./svg-axes.js";

/** One side-by-side item of a category group. */
export type CategoryItem =
  | {
      kind: "bar";
      value: number;
      /** Whisker from low to high (e.g. p10–p90). */
      low?: number;
      high?: number;
      /** A short dark mark across the bar at this value (e.g. the memory before the request). */
      marker?: number;
      colour: string;
      /** Translucent fill: the second measure of a pair. */
      light?: boolean;
      /** Printed above the bar when it fits. */
      label?: string;
      tooltip?: string;
    }
  | {
      kind: "stack";
      segments: { value: number; colour: string; tooltip?: string }[];
      light?: boolean;
      label?: string;
    }
  | { kind: "strip"; values: number[]; colour: string; tooltip?: string };

/** A horizontal reference line, labelled in the margin right of the plot (clear of the data). */
export interface RefLine {
  value: number;
  label?: string;
  colour?: string;
  dashed?: boolean;
}

/** A category panel. */
export interface CategoryPanelSpec {
  title?: string;
  yLabel: string;
  /** Log10 y axis (values <= 0 sit on the bottom of the axis). */
  log?: boolean;
  /** Forces the y range (else: from the data, including 0 unless the panel is a strip or log panel). */
  yMin?: number;
  yMax?: number;
  groups: { label: string; items: CategoryItem[] }[];
  refLines?: RefLine[];
}

const LABEL_SIZE = 11.5;
const REF_SIZE = 10.5;
const REF_LINE = 13;
/** Width reference-line labels wrap at, in the right margin. */
const REF_WIDTH = 78;
const VALUE_SIZE = 10;

/** The panel's title lines (at most two) and the height they take. */
function panelTitle(title: string | undefined, box: Box): { svg: string[]; height: number } {
  if (!title) return { svg: [], height: 8 };
  const lines = wrapText(title, box.width - 20, 13).slice(0, 2);
  return {
    svg: lines.map((l, i) =>
      text(box.x + box.width / 2, box.y + 16 + i * 16, l, { size: 13, weight: "bold", anchor: "middle" }),
    ),
    height: 10 + lines.length * 16,
  };
}

function itemValues(item: CategoryItem): number[] {
  switch (item.kind) {
    case "bar":
      return [item.value, item.high ?? item.value, item.low ?? item.value, item.marker ?? item.value];
    case "stack":
      return [item.segments.reduce((s, g) => s + Math.max(0, g.value), 0)];
    case "strip":
      return item.values;
  }
}

/** A category panel: grouped bars, stacked bars or strips, with reference lines. */
export function categoryPanel(spec: CategoryPanelSpec): Panel {
  return (box) => {
    const out: string[] = [];
    const head = panelTitle(spec.title, box);
    out.push(...head.svg);
    const items = spec.groups.flatMap((g) => g.items);
    const values = [...items.flatMap(itemValues), ...(spec.refLines ?? []).map((r) => r.value)].filter(
      Number.isFinite,
    );
    const labelled = items.some((i) => i.kind !== "strip" && i.label);
    const zeroBased = !spec.log && items.some((i) => i.kind !== "strip");
    let lo = spec.yMin ?? (zeroBased ? Math.min(0, ...values) : Math.min(...values));
    let hi = spec.yMax ?? Math.max(...values);
    if (!values.length) [lo, hi] = [0, 1];
    if (spec.yMax === undefined && labelled && !spec.log) hi += (hi - lo) * 0.08;
    const makeScale = (r0: number, r1: number): Scale =>
      spec.log ? logScale(Math.max(lo, 1e-300), hi, r0, r1, 0.4) : linearScale(lo, hi, r0, r1);

    const left = box.x + yAxisWidth(makeScale(0, 1)) + 6;
    const refLabels = (spec.refLines ?? []).map((r) =>
      r.label ? wrapText(r.label, REF_WIDTH, REF_SIZE) : [],
    );
    const margin = Math.max(0, ...refLabels.flat().map((l) => textWidth(l, REF_SIZE)));
    const right = box.x + box.width - (margin ? margin + 12 : 14);
    const band = (right - left) / Math.max(1, spec.groups.length);
    const widest = Math.max(0, ...spec.groups.map((g) => textWidth(g.label, LABEL_SIZE)));
    const rotate = widest > band - 6;
    const bottomSpace = rotate ? Math.min(widest * 0.6 + 18, box.height * 0.35) : 22;
    const plot = {
      x: left,
      y: box.y + head.height + 6,
      width: right - left,
      height: box.height - head.height - 6 - bottomSpace - 8,
    };
    const y = makeScale(plot.y + plot.height, plot.y);
    out.push(...yAxis(y, plot, spec.yLabel));
    out.push(line(plot.x, plot.y + plot.height, plot.x + plot.width, plot.y + plot.height, "#999999"));
    const base = y.map(spec.log ? y.domain[0] : Math.max(y.domain[0], Math.min(0, y.domain[1])));

    spec.groups.forEach((group, gi) => {
      const gx = plot.x + gi * band;
      const centre = gx + band / 2;
      const labelY = plot.y + plot.height + 16;
      out.push(
        rotate
          ? text(centre + 4, labelY - 4, group.label, { size: LABEL_SIZE, anchor: "end", rotate: -35 })
          : text(centre, labelY, group.label, { size: LABEL_SIZE, anchor: "middle" }),
      );
      const inner = band * 0.8;
      const slot = inner / Math.max(1, group.items.length);
      group.items.forEach((item, ii) => {
        const sx = gx + band * 0.1 + ii * slot;
        out.push(...drawItem(item, sx, slot, y, base, plot));
      });
    });

    // Reference lines, then their labels beside the plot, pushed apart where they would overlap.
    let below = -Infinity;
    const placed = (spec.refLines ?? [])
      .map((ref, i) => ({ ref, lines: refLabels[i]!, ry: y.map(ref.value) }))
      .filter((r) => Number.isFinite(r.ry))
      .sort((a, b) => a.ry - b.ry);
    for (const { ref, lines, ry } of placed) {
      const colour = ref.colour ?? INK;
      const dash = ref.dashed === false ? "" : ` stroke-dasharray="6 4"`;
      out.push(line(plot.x, ry, plot.x + plot.width, ry, colour, `stroke-width="1.5"${dash}`));
      let ty = Math.max(ry + 4 - ((lines.length - 1) * REF_LINE) / 2, below + REF_LINE);
      for (const l of lines) {
        out.push(text(plot.x + plot.width + 6, ty, l, { size: REF_SIZE, fill: colour }));
        below = ty;
        ty += REF_LINE;
      }
    }
    return out;
  };
}

function drawItem(item: CategoryItem, sx: number, slot: number, y: Scale, base: number, plot: Box): string[] {
  const out: string[] = [];
  const w = Math.min(slot * 0.86, 60);
  const x = sx + (slot - w) / 2;
  const cx = sx + slot / 2;
  const valueLabel = (label: string | undefined, top: number) => {
    if (!label || textWidth(label, VALUE_SIZE) > slot + 8) return;
    out.push(
      text(cx, Math.max(top - 4, plot.y + 9), label, { size: VALUE_SIZE, anchor: "middle", fill: MUTED }),
    );
  };
  switch (item.kind) {
    case "bar": {
      if (!Number.isFinite(item.value)) break;
      const top = y.map(item.value);
      const fill = item.light
        ? `fill="${item.colour}" fill-opacity="0.35" stroke="${item.colour}" stroke-width="1"`
        : `fill="${item.colour}"`;
      out.push(bar(x, Math.min(top, base), w, Math.abs(base - top), fill, item.tooltip));
      let labelTop = top;
      if (item.low !== undefined && item.high !== undefined && Number.isFinite(item.low + item.high)) {
        const [ylo, yhi] = [y.map(item.low), y.map(item.high)];
        const cap = Math.max(4, w * 0.3);
        out.push(
          line(cx, ylo, cx, yhi, INK, `stroke-width="1.3"`),
          line(cx - cap / 2, ylo, cx + cap / 2, ylo, INK, `stroke-width="1.3"`),
          line(cx - cap / 2, yhi, cx + cap / 2, yhi, INK, `stroke-width="1.3"`),
        );
        labelTop = Math.min(top, yhi);
      }
      if (item.marker !== undefined && Number.isFinite(item.marker)) {
        const my = y.map(item.marker);
        out.push(line(x - 2, my, x + w + 2, my, INK, `stroke-width="2.5"`));
      }
      valueLabel(item.label, labelTop);
      break;
    }
    case "stack": {
      let acc = 0;
      for (const seg of item.segments) {
        if (!(seg.value > 0)) continue;
        const y0 = y.map(acc);
        const y1 = y.map(acc + seg.value);
        const fill = item.light
          ? `fill="${seg.colour}" fill-opacity="0.35" stroke="${seg.colour}" stroke-width="1"`
          : `fill="${seg.colour}" stroke="white" stroke-width="0.5"`;
        out.push(bar(x, y1, w, y0 - y1, fill, seg.tooltip));
        acc += seg.value;
      }
      valueLabel(item.label, y.map(acc));
      break;
    }
    case "strip": {
      const finite = item.values.filter(Number.isFinite);
      finite.forEach((v, j) => {
        // Deterministic jitter (golden-ratio sequence): the same data always draws the same picture.
        const dx = (((j * 0.618034) % 1) - 0.5) * slot * 0.5;
        out.push(
          `<circle cx="${(cx + dx).toFixed(1)}" cy="${y.map(v).toFixed(1)}" r="3.2" fill="${item.colour}" fill-opacity="0.75" stroke="white" stroke-width="0.6">${tooltip(item.tooltip ? `${item.tooltip}: ${v}` : String(v))}</circle>`,
        );
      });
      if (finite.length) {
        const sorted = [...finite].sort((a, b) => a - b);
        const mid = sorted.length / 2;
        const med = sorted.length % 2 ? sorted[Math.floor(mid)]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
        const my = y.map(med);
        out.push(line(cx - slot * 0.36, my, cx + slot * 0.36, my, INK, `stroke-width="2"`));
      }
      break;
    }
  }
  return out;
}

/** One series of a line panel. */
export interface LineSeries {
  label: string;
  colour: string;
  points: [number, number][];
  dashed?: boolean;
}

/** A line panel. */
export interface LinePanelSpec {
  title?: string;
  xLabel: string;
  yLabel: string;
  series: LineSeries[];
  /** Lower end of the y axis (default: 0). */
  yMin?: number;
  /** Vertical marks with a label at the top (e.g. the response). */
  markers?: { x: number; label: string }[];
}

/** A line panel: each series a polyline over a linear x axis. */
export function linePanel(spec: LinePanelSpec): Panel {
  return (box) => {
    const out: string[] = [];
    const head = panelTitle(spec.title, box);
    out.push(...head.svg);
    const xs = spec.series.flatMap((s) => s.points.map((p) => p[0]));
    const ys = spec.series.flatMap((s) => s.points.map((p) => p[1]));
    const xMax = Math.max(1e-9, ...xs, ...(spec.markers ?? []).map((m) => m.x));
    const yMin = spec.yMin ?? 0;
    const yMax = Math.max(yMin + 1e-9, ...ys);
    const left = box.x + yAxisWidth(linearScale(yMin, yMax, 0, 1)) + 6;
    const plot = {
      x: left,
      y: box.y + head.height + 6,
      width: box.x + box.width - 16 - left,
      height: box.height - head.height - 6 - 46,
    };
    const x = linearScale(Math.min(0, ...xs), xMax, plot.x, plot.x + plot.width, 6);
    const y = linearScale(yMin, yMax, plot.y + plot.height, plot.y);
    out.push(...xAxis(x, plot, spec.xLabel), ...yAxis(y, plot, spec.yLabel));
    for (const m of spec.markers ?? []) {
      const mx = x.map(m.x);
      out.push(line(mx, plot.y, mx, plot.y + plot.height, MUTED, `stroke-dasharray="3 3"`));
      out.push(text(mx - 3, plot.y + 10, m.label, { size: 10, anchor: "end", fill: MUTED, halo: true }));
    }
    for (const s of spec.series) {
      if (!s.points.length) continue;
      const pts = s.points.map(([px, py]) => `${x.map(px).toFixed(1)},${y.map(py).toFixed(1)}`).join(" ");
      out.push(
        `<polyline points="${pts}" fill="none" stroke="${s.colour}" stroke-width="2" stroke-linejoin="round"${s.dashed ? ` stroke-dasharray="6 3"` : ""}>${tooltip(s.label)}</polyline>`,
      );
    }
    out.push(line(plot.x, plot.y, plot.x + plot.width, plot.y, GRID));
    return out;
  };
}

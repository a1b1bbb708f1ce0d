// A small SVG drawing kit for the evaluation's figures, with no dependency: scales with nice ticks (linear
// and log), axes, legends, category panels (grouped bars with whiskers, stacked bars, strip plots) and line
// panels, composed into a self-contained document with a white background that a browser shows as is.
// Layout is computed from estimated text widths so that labels do not overlap; colours come from the
// Okabe–Ito palette, which stays distinguishable under the common colour-vision deficiencies.

/** A rectangle of the drawing, in SVG user units. */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Something drawn into a box: the SVG elements it produced. */
export type Panel = (box: Box) => string[];

export const FONT = "Helvetica, Arial, sans-serif";
export const INK = "#222222";
export const MUTED = "#5a5a5a";
export const GRID = "#e4e4e4";
/** Okabe & Ito's colour-blind-safe palette (black last: it is kept for reference marks). */
export const PALETTE = [
  "#0072B2",
  "#E69F00",
  "#009E73",
  "#D55E00",
  "#CC79A7",
  "#56B4E9",
  "#F0E442",
  "#000000",
];

/** Escapes text for SVG content and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(
    /[<>&"']/g,
    (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

const r1 = (v: number) => +v.toFixed(1);

/** Advance widths (em) of Helvetica/Arial/Liberation Sans glyphs that differ from the common 0.556. */
const NARROW: Record<string, number> = {
  " ": 0.278,
  i: 0.222,
  j: 0.222,
  l: 0.222,
  f: 0.278,
  t: 0.278,
  r: 0.333,
  ".": 0.278,
  ",": 0.278,
  ":": 0.278,
  ";": 0.278,
  "|": 0.26,
  "!": 0.278,
  "'": 0.191,
  "(": 0.333,
  ")": 0.333,
  "[": 0.278,
  "]": 0.278,
  "/": 0.278,
  "-": 0.333,
  "·": 0.278,
  c: 0.5,
  k: 0.5,
  s: 0.5,
  v: 0.5,
  x: 0.5,
  y: 0.5,
  z: 0.5,
  m: 0.833,
  w: 0.722,
  "%": 0.889,
  "—": 1,
  "≥": 0.549,
  "≤": 0.549,
  "×": 0.584,
  I: 0.278,
  M: 0.833,
  W: 0.944,
  J: 0.5,
};

/**
 * Width of `text` at font size `size`, from Helvetica's metrics (Arial and Liberation Sans share them),
 * 18 % generous so that the widest common fallback face (DejaVu Sans, where Helvetica and Arial are missing) does
 * not make labels collide or overflow. Bold text is about 8 % wider again.
 */
export function textWidth(text: string, size: number, bold = false): number {
  let em = 0;
  for (const c of text) em += NARROW[c] ?? (c >= "A" && c <= "Z" ? 0.667 : 0.556);
  return em * size * 1.18 * (bold ? 1.08 : 1);
}

/** Splits `text` into lines no wider than `width` at font size `size` (and at every newline). */
export function wrapText(text: string, width: number, size: number, bold = false): string[] {
  const lines: string[] = [];
  for (const paragraph of text.split("\n")) {
    let line = "";
    for (const word of paragraph.split(/\s+/).filter(Boolean)) {
      const next = line ? `${line} ${word}` : word;
      if (line && textWidth(next, size, bold) > width) {
        lines.push(line);
        line = word;
      } else line = next;
    }
    if (line) lines.push(line);
  }
  return lines;
}

/** Options of {@link text}. */
export interface TextOptions {
  size?: number;
  anchor?: "start" | "middle" | "end";
  weight?: "normal" | "bold";
  fill?: string;
  /** Rotation in degrees about (x, y). */
  rotate?: number;
  /** A white outline behind the glyphs, so the text stays readable over bars and lines. */
  halo?: boolean;
}

/** A text element (content escaped). */
export function text(x: number, y: number, content: string, o: TextOptions = {}): string {
  const attrs = [`x="${r1(x)}"`, `y="${r1(y)}"`];
  if (o.size && o.size !== 12) attrs.push(`font-size="${o.size}"`);
  if (o.anchor && o.anchor !== "start") attrs.push(`text-anchor="${o.anchor}"`);
  if (o.weight === "bold") attrs.push(`font-weight="bold"`);
  attrs.push(`fill="${o.fill ?? INK}"`);
  if (o.rotate) attrs.push(`transform="rotate(${o.rotate} ${r1(x)} ${r1(y)})"`);
  if (o.halo) attrs.push(`stroke="white" stroke-width="3" stroke-linejoin="round" paint-order="stroke"`);
  return `<text ${attrs.join(" ")}>${escapeXml(content)}</text>`;
}

/** A tooltip child element: browsers show it on hover. */
export function tooltip(content: string | undefined): string {
  return content ? `<title>${escapeXml(content)}</title>` : "";
}

/** A line segment. */
export function line(x1: number, y1: number, x2: number, y2: number, stroke: string, extra = ""): string {
  return `<line x1="${r1(x1)}" y1="${r1(y1)}" x2="${r1(x2)}" y2="${r1(y2)}" stroke="${stroke}"${extra ? ` ${extra}` : ""}/>`;
}

/** A rectangle as a path (so that `<rect` stays reserved for data marks that tests count). */
export function boxPath(x: number, y: number, w: number, h: number, attrs: string, title?: string): string {
  const d = `M${r1(x)} ${r1(y)}h${r1(w)}v${r1(h)}h${r1(-w)}z`;
  return title ? `<path d="${d}" ${attrs}>${tooltip(title)}</path>` : `<path d="${d}" ${attrs}/>`;
}

/** A data rectangle (a bar or a segment) with an optional tooltip. */
export function bar(x: number, y: number, w: number, h: number, attrs: string, title?: string): string {
  const geometry = `x="${r1(x)}" y="${r1(y)}" width="${r1(Math.max(w, 0))}" height="${r1(Math.max(h, 0))}"`;
  return title ? `<rect ${geometry} ${attrs}>${tooltip(title)}</rect>` : `<rect ${geometry} ${attrs}/>`;
}

/** A complete SVG document: white background, the kit's font, an accessible title. */
export function svgDocument(width: number, height: number, title: string, body: string[]): string {
  const w = Math.ceil(width);
  const h = Math.ceil(height);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="${FONT}" font-size="12" role="img">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...body,
    "</svg>",
    "",
  ].join("\n");
}

// ---- scales ------------------------------------------------------------------------------------------

/** A mapping from data values to positions, with its ticks and their labels. */
export interface Scale {
  domain: [number, number];
  map(v: number): number;
  ticks: number[];
  format(v: number): string;
}

/** A round step (1, 2, 2.5 or 5 × 10^k) giving about `count` intervals over `span`. */
export function niceStep(span: number, count = 5): number {
  const raw = span / Math.max(1, count);
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw * 0.999) ?? power * 10;
}

/** A number with as many decimals as `step` needs. */
export function formatNumber(v: number, step: number): string {
  const decimals = Math.min(
    6,
    Math.max(0, -Math.floor(Math.log10(step) + 1e-9) + (step % 1 === 0.5 ? 1 : 0)),
  );
  const s = (Math.abs(v) < step / 1e6 ? 0 : v).toFixed(Number.isInteger(step) ? 0 : decimals);
  return s.replace(/^-0(\.0*)?$/, "0");
}

/** A linear scale over [min, max] (widened to round ticks) onto [r0, r1]. */
export function linearScale(min: number, max: number, r0: number, r1v: number, count = 5): Scale {
  let lo = Number.isFinite(min) ? min : 0;
  let hi = Number.isFinite(max) ? max : 1;
  if (hi <= lo) [lo, hi] = lo === 0 ? [0, 1] : [lo - Math.abs(lo) * 0.1, hi + Math.abs(hi) * 0.1];
  const step = niceStep(hi - lo, count);
  lo = Math.floor(lo / step + 1e-9) * step;
  hi = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let t = lo; t <= hi + step * 1e-6; t += step) ticks.push(+t.toFixed(10));
  return {
    domain: [lo, hi],
    map: (v) => r0 + ((v - lo) / (hi - lo)) * (r1v - r0),
    ticks,
    format: (v) => formatNumber(v, step),
  };
}

const SUPERSCRIPT: Record<string, string> = {
  "-": "⁻",
  "0": "⁰",
  "1": "¹",
  "2": "²",
  "3": "³",
  "4": "⁴",
  "5": "⁵",
  "6": "⁶",
  "7": "⁷",
  "8": "⁸",
  "9": "⁹",
};

/** 10 to the power `exponent`, written with superscript digits (10⁻⁶). */
export function powerOfTen(exponent: number): string {
  return `10${String(exponent)
    .split("")
    .map((c) => SUPERSCRIPT[c] ?? c)
    .join("")}`;
}

/**
 * A log10 scale over whole decades covering [min, max] (both > 0) onto [r0, r1]; `pad` decades of room
 * below the lowest decade keep marks drawn at the minimum clear of the axis line.
 */
export function logScale(min: number, max: number, r0: number, r1v: number, pad = 0): Scale {
  const lo = Math.floor(Math.log10(min > 0 ? min : 1e-16));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(max > 0 ? max : 1)));
  const every = Math.ceil((hi - lo) / 8);
  const ticks: number[] = [];
  for (let e = lo; e <= hi; e += every) ticks.push(10 ** e);
  const from = lo - pad;
  return {
    domain: [10 ** lo, 10 ** hi],
    map: (v) => r0 + ((Math.log10(Math.max(v, 10 ** lo)) - from) / (hi - from)) * (r1v - r0),
    ticks,
    format: (v) => powerOfTen(Math.round(Math.log10(v))),
  };
}

// ---- axes and legends --------------------------------------------------------------------------------

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

// ---- figures -----------------------------------------------------------------------------------------

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

// A small SVG drawing kit for the evaluation's figures, with no dependency: this file holds its elements
// (text, lines, bars, box paths, tooltips), text measurement and wrapping, the colours and the document
// wrapper; svg-scales.ts maps data to positions, svg-axes.ts draws axes and legends, svg-figure.ts lays
// panels out into a figure and svg-panels.ts holds the chart kinds. Layout is computed from estimated
// text widths so that labels do not overlap; colours come from the Okabe–Ito palette, which stays
// distinguishable under the common colour-vision deficiencies.

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

/** A coordinate rounded to a tenth of a unit, as every element of the kit writes it. */
export const r1 = (v: number) => +v.toFixed(1);

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

// The SVG kit's scales: mappings from data values to positions with round ticks and their labels, linear
// (nice 1, 2, 2.5 or 5 × 10^k steps) and log10 (whole decades labelled with superscript powers of ten).
// Axes (svg-axes.ts) draw them; panels (svg-panels.ts) choose them.

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

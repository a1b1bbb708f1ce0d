// The SVG kit and its panels: scales with round ticks, escaping, text layout, legends that wrap, and
// panels whose marks match their data and whose labels stay clear of each other.
import { test } from "node:test";
import assert from "node:assert/strict";
import { escapeXml, textWidth, wrapText, type Box } from "../../src/report/svg-chart.js";
import { linearScale, logScale, niceStep, powerOfTen } from "../../src/report/svg-scales.js";
import { legend } from "../../src/report/svg-axes.js";
import { figure } from "../../src/report/svg-figure.js";
import { categoryPanel, linePanel } from "../../src/report/svg-panels.js";
import { xmlProblem } from "./xml-check.js";

const BOX: Box = { x: 0, y: 0, width: 420, height: 320 };
const num = (s: string, attr: string) => Number(new RegExp(`${attr}="([-\\d.]+)"`).exec(s)![1]);

test("escapeXml escapes every character that could break markup", () => {
  assert.equal(escapeXml(`a<b>&"c'`), "a&lt;b&gt;&amp;&quot;c&#39;");
});

test("linear scales widen to round ticks that cover the data", () => {
  assert.equal(niceStep(87, 5), 20);
  assert.equal(niceStep(0.9, 5), 0.2);
  const s = linearScale(3, 87, 100, 0);
  assert.deepEqual(s.ticks, [0, 20, 40, 60, 80, 100]);
  assert.deepEqual(s.domain, [0, 100]);
  assert.equal(s.map(0), 100);
  assert.equal(s.map(100), 0);
  assert.equal(s.format(40), "40");
  const frac = linearScale(96.3, 99.8, 0, 1);
  assert.ok(frac.ticks[0]! <= 96.3 && frac.ticks.at(-1)! >= 99.8);
  assert.equal(frac.format(97), "97");
  assert.equal(linearScale(0, 0.9, 0, 1).format(0.4), "0.4");
  // A flat series still gets an axis.
  assert.ok(linearScale(5, 5, 0, 1).ticks.length >= 2);
});

test("log scales tick whole decades, labelled with superscripts", () => {
  const s = logScale(3e-15, 2e-5, 300, 0);
  // 11 decades: every other one is labelled, so that at most 8 labels share the axis.
  assert.deepEqual(
    s.ticks.map((t) => Math.round(Math.log10(t))),
    [-15, -13, -11, -9, -7, -5],
  );
  assert.ok(s.map(1e-10) < s.map(1e-12), "larger values are higher up");
  assert.equal(s.format(1e-6), "10⁻⁶");
  assert.equal(powerOfTen(12), "10¹²");
  // With padding, the lowest decade sits above the axis line.
  assert.ok(logScale(1e-16, 1e-3, 300, 0, 0.4).map(1e-16) < 300);
});

test("text widths and wrapping follow the glyphs", () => {
  assert.ok(textWidth("mmmm", 12) > textWidth("iiii", 12) * 3);
  assert.ok(textWidth("ort-best", 12) > textWidth("mini", 12));
  const lines = wrapText("the quick brown fox jumps over the lazy dog", 80, 12);
  assert.ok(lines.length > 2);
  for (const l of lines) assert.ok(textWidth(l, 12) <= 80 || !l.includes(" "), l);
  assert.deepEqual(wrapText("target:\ncos ≥ 0.99999", 500, 12), ["target:", "cos ≥ 0.99999"]);
});

test("a legend wraps onto new lines within its width", () => {
  const items = Array.from({ length: 8 }, (_, i) => ({ label: `strategy number ${i}`, colour: "#000" }));
  const wide = legend(items, 0, 0, 2000);
  const narrow = legend(items, 0, 0, 300);
  assert.ok(narrow.height > wide.height);
  const xs = narrow.svg.filter((s) => s.startsWith("<text")).map((s) => num(s, "x"));
  assert.ok(Math.max(...xs) < 300);
});

test("a category panel draws one bar per item, whiskers, and labels its reference line beside the plot", () => {
  const panel = categoryPanel({
    title: "model <1>",
    yLabel: "latency (ms)",
    groups: ["eager", "pisel", "cicada"].map((label, i) => ({
      label,
      items: [
        {
          kind: "bar",
          value: 100 - i * 30,
          low: 90 - i * 30,
          high: 120 - i * 30,
          colour: "#123456",
          label: "x",
        },
      ],
    })),
    refLines: [{ value: 30, label: "floor 30 ms" }],
  });
  const svg = panel(BOX).join("\n");
  const bars = svg.match(/<rect [^>]*>/g) ?? [];
  assert.equal(bars.length, 3);
  // Bars are ordered left to right and the first (largest) is the tallest.
  const heights = bars.map((b) => num(b, "height"));
  assert.ok(heights[0]! > heights[1]! && heights[1]! > heights[2]!);
  const rightmost = Math.max(...bars.map((b) => num(b, "x") + num(b, "width")));
  const floor = (svg.match(/<text [^>]*>floor 30 ms<\/text>/) ?? [])[0];
  assert.ok(floor, "the reference line is labelled");
  assert.ok(num(floor, "x") > rightmost, "the label sits right of every bar");
  assert.ok(num(floor, "x") + textWidth("floor 30 ms", 10.5) <= BOX.width + 1, "and inside the panel");
  assert.match(svg, /model &lt;1&gt;/);
  // 3 whiskers × (stem + 2 caps) + the reference line and axes.
  assert.ok((svg.match(/<line /g) ?? []).length >= 9 + 1);
});

test("category labels rotate when they would not fit side by side, and labels of close reference lines do not overlap", () => {
  const groups = Array.from({ length: 12 }, (_, i) => ({
    label: `a-long-category-name-${i}`,
    items: [{ kind: "strip" as const, values: [97 + i / 10, 98], colour: "#000" }],
  }));
  const svg = categoryPanel({
    yLabel: "%",
    yMin: 60,
    yMax: 100,
    groups,
    refLines: [
      { value: 98, label: "target:\n98 %" },
      { value: 99.41, label: "paper:\n99.41 %" },
    ],
  })(BOX).join("\n");
  assert.match(svg, /rotate\(-35 /);
  assert.equal((svg.match(/<circle /g) ?? []).length, 24);
  const refYs = ["target:", "98 %", "paper:", "99.41 %"].map((t) =>
    num(svg.match(new RegExp(`<text [^>]*>${t}</text>`))![0], "y"),
  );
  const sorted = [...refYs].sort((a, b) => a - b);
  for (let i = 1; i < sorted.length; i++)
    assert.ok(sorted[i]! - sorted[i - 1]! >= 12, `label lines ${sorted.join(", ")}`);
});

test("stacked bars stack their segments; a line panel draws one polyline per series", () => {
  const stacked = categoryPanel({
    yLabel: "ms",
    groups: [
      {
        label: "s",
        items: [{ kind: "stack", segments: [1, 2, 3].map((v) => ({ value: v, colour: "#000" })) }],
      },
    ],
  })(BOX).join("\n");
  const segs = (stacked.match(/<rect [^>]*>/g) ?? []).map((r) => ({ y: num(r, "y"), h: num(r, "height") }));
  assert.equal(segs.length, 3);
  for (let i = 1; i < segs.length; i++)
    assert.ok(Math.abs(segs[i]!.y + segs[i]!.h - segs[i - 1]!.y) < 0.2, "each on the previous");

  const lines = linePanel({
    xLabel: "ms",
    yLabel: "MiB",
    series: [
      {
        label: "a",
        colour: "#000",
        points: [
          [0, 1],
          [5, 3],
          [10, 2],
        ],
      },
      {
        label: "b",
        colour: "#111",
        points: [
          [0, 2],
          [8, 4],
        ],
      },
    ],
    markers: [{ x: 9, label: "end" }],
  })(BOX).join("\n");
  const polylines = lines.match(/<polyline points="([^"]*)"/g) ?? [];
  assert.equal(polylines.length, 2);
  assert.equal(polylines[0].split(" ").length - 1, 3);
});

test("a figure is one well-formed SVG document with a white background and its title", () => {
  const svg = figure({
    title: "Latency & <memory>",
    subtitle: "scenario reload, cache warm",
    legend: [{ label: "a", colour: "#000", style: "dash" }],
    panels: [0, 1, 2, 3].map(() =>
      categoryPanel({
        yLabel: "ms",
        groups: [{ label: "x", items: [{ kind: "bar", value: 1, colour: "#000" }] }],
      }),
    ),
    columns: 3,
    notes: ["a note"],
  });
  assert.equal(xmlProblem(svg), undefined);
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(svg, /<rect width="100%" height="100%" fill="white"\/>/);
  assert.match(svg, /<title>Latency &amp; &lt;memory&gt;<\/title>/);
  // Four panels in three columns: two rows.
  const width = num(svg, "width");
  const height = num(svg, "height");
  assert.ok(width >= 3 * 420 && height > 2 * 320);
});

test("the well-formedness check itself catches broken markup", () => {
  assert.equal(xmlProblem(`<svg><g><text>a &amp; b</text></g></svg>`), undefined);
  assert.ok(xmlProblem(`<svg><g></svg>`));
  assert.ok(xmlProblem(`<svg><text>a & b</text></svg>`));
  assert.ok(xmlProblem(`<svg><rect x=1/></svg>`));
  assert.ok(xmlProblem(`<svg></svg><svg></svg>`));
});

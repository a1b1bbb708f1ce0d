// The layering check of issue 11, as a ratchet: src/'s imports must follow the table of allowed edges
// between its top-level folders (LAYERS below, drawn in the README's Layout section, which this test
// compares with it), no src file may take part in an import cycle, and none may be over 400 lines. Today's
// tree breaks all three in known places; those are listed in BASELINE with why each is there and what
// issue 11 does about it. The test fails on a violation not in the baseline and on a baseline entry that
// no longer occurs, so the baseline can only shrink. Rule for type-only imports (they load no code, see
// test/support/import-graph.ts for how an import is classed): they may follow any value edge and also
// TYPE_ONLY's edges (a layer naming the shape of the data it is handed); they are left out of the cycle
// check, since a cycle through types runs no module twice or half-initialised.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import test from "node:test";
import { fileURLToPath } from "node:url";
import { cyclesOf, layerOf, readSourceTree, type SourceFile } from "./support/import-graph.js";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/**
 * The layers of src/ from the bottom up, and the layers each may import (value imports). A layer is a
 * top-level folder or a file directly in src/ (`errors`, and the entry points `index` and `tools`, which
 * nothing imports). Derived from the intended design (DESIGN.md, issue 11), not from today's code:
 * errors and util are leaves everyone may use; format is the ONNX/bundle I/O under zoo, importer and
 * runtime; cache owns the cache root (kinds, keys, entry layouts, integrity, listing, pruning) on format
 * and never loads the runtime, so that listing or pruning a cache never loads onnxruntime; metrics
 * measures traces and tensors and imports no other layer; runtime builds the cache and records traces
 * (metrics); workload (invocation traces, arrivals, the open-loop replayer and its summary) measures with
 * metrics and never reaches the runtime, so a replayer loads no onnxruntime (test/workload/); report draws
 * results with metrics' helpers, writes through format and summarises replays with workload; serve sits on
 * the runtime and drives the platform with a workload; bench and cli sit on top of everything.
 */
const LAYERS: Record<string, string[]> = {
  errors: [],
  config: [],
  util: ["errors", "config"],
  format: ["errors", "config", "util"],
  cache: ["errors", "config", "util", "format"],
  zoo: ["errors", "config", "util", "format"],
  importer: ["errors", "config", "util", "format"],
  metrics: ["errors", "config", "util"],
  runtime: ["errors", "config", "util", "format", "cache", "metrics"],
  workload: ["errors", "config", "util", "metrics"],
  report: ["errors", "config", "util", "format", "metrics", "workload"],
  serve: ["errors", "config", "util", "format", "metrics", "runtime", "workload"],
  bench: [
    "errors",
    "config",
    "util",
    "format",
    "cache",
    "zoo",
    "importer",
    "metrics",
    "runtime",
    "workload",
    "report",
    "serve",
  ],
  cli: [
    "errors",
    "config",
    "util",
    "format",
    "cache",
    "zoo",
    "importer",
    "metrics",
    "runtime",
    "workload",
    "report",
    "serve",
    "bench",
  ],
  index: ["errors", "config", "util", "format", "metrics", "runtime"],
  tools: ["errors", "config", "util", "format", "cache", "zoo", "importer", "metrics", "runtime", "report"],
};

/**
 * Extra edges for type-only imports: a consumer may name the types of the data a layer upstream of it
 * produces without loading that layer. metrics measures runtime's tensors (dtypes from format); workload
 * summarises the memory timeline the platform's pool samples (serve); report draws what runtime, serve
 * (replays) and bench produce.
 */
const TYPE_ONLY: Record<string, string[]> = {
  metrics: ["format", "runtime"],
  workload: ["serve"],
  report: ["runtime", "serve", "bench"],
};

/** A known violation: what it is, why it is there, what issue 11 does about it. */
interface Known {
  why: string;
}

/** Today's violations. Remove an entry when its violation is gone (the test says so). */
const BASELINE = {
  /** Backward value imports, `from -> to` (src/-relative files). */
  edges: {} as Record<string, Known>,
  /** Import cycles over value imports, members sorted and joined by ` <-> `. */
  cycles: {} as Record<string, Known>,
  /** Files over MAX_LINES: today's line count; may grow by at most GROWTH lines. */
  lengths: {} as Record<string, Known & { lines: number }>,
};

const MAX_LINES = 400;
const GROWTH = 10;

const files: SourceFile[] = readSourceTree(join(ROOT, "src"));
const paths = new Set(files.map((f) => f.path));
const local = files.flatMap((f) => f.imports.filter((i) => i.to !== undefined));

/** Fails listing `found` not in `known`, and `known` entries not found (the ratchet). */
function ratchet(kind: string, found: Map<string, string>, known: Record<string, Known>): number {
  const fresh = [...found].filter(([key]) => !(key in known)).map(([key, detail]) => `${key} ${detail}`);
  const gone = Object.keys(known).filter((key) => !found.has(key));
  assert.deepEqual(
    { new: fresh, gone },
    { new: [], gone: [] },
    `${kind}: fix new violations (see issue 11), do not baseline them; remove gone entries from BASELINE`,
  );
  return found.size;
}

const summary = { edges: 0, violations: 0, over: 0 };

test("every import resolves to a src/ file and every layer is in the table", () => {
  const unresolved = local.filter((i) => !paths.has(i.to!)).map((i) => `${i.from}: ${i.specifier}`);
  assert.deepEqual(unresolved, [], "relative imports that name no src/ .ts file");
  const layers = [...new Set(files.map((f) => layerOf(f.path)))].sort();
  const missing = layers.filter((layer) => !(layer in LAYERS));
  assert.deepEqual(missing, [], "layers of src/ missing from LAYERS: place them in the table");
  for (const [layer, allowed] of Object.entries({ ...LAYERS, ...TYPE_ONLY })) {
    const bad = allowed.filter((to) => !(to in LAYERS) || to === "cli" || to === "index" || to === "tools");
    assert.deepEqual(bad, [], `${layer}: may only import layers of the table, never cli or an entry point`);
  }
});

test("imports follow the allowed edges between layers (ratchet)", () => {
  const found = new Map<string, string>();
  for (const edge of local) {
    const from = layerOf(edge.from);
    const to = layerOf(edge.to!);
    if (from === to) continue;
    summary.edges++;
    const allowed = [...(LAYERS[from] ?? []), ...(edge.kind === "type" ? (TYPE_ONLY[from] ?? []) : [])];
    if (!allowed.includes(to)) {
      found.set(`${edge.from} -> ${edge.to}`, `(${edge.kind} import, ${from} may not import ${to})`);
    }
  }
  summary.violations += ratchet("layer edge", found, BASELINE.edges);
});

test("no import cycles between files over value imports (ratchet)", () => {
  const graph = new Map<string, string[]>();
  for (const f of files) {
    graph.set(
      f.path,
      f.imports.filter((i) => i.kind === "value" && i.to !== undefined).map((i) => i.to!),
    );
  }
  const found = new Map<string, string>();
  for (const cycle of cyclesOf([...paths], graph)) found.set(cycle.join(" <-> "), "(value imports)");
  summary.violations += ratchet("import cycle", found, BASELINE.cycles);
});

test(`no src file over ${MAX_LINES} lines (ratchet: known ones may grow by ${GROWTH} at most)`, () => {
  const over = files.filter((f) => f.lines > MAX_LINES);
  summary.over = over.length;
  const fresh = over.filter((f) => !(f.path in BASELINE.lengths)).map((f) => `${f.path}: ${f.lines}`);
  const grown = over
    .filter((f) => f.lines > (BASELINE.lengths[f.path]?.lines ?? Infinity) + GROWTH)
    .map((f) => `${f.path}: ${f.lines} lines, baseline ${BASELINE.lengths[f.path]!.lines}`);
  const gone = Object.keys(BASELINE.lengths).filter((p) => !over.some((f) => f.path === p));
  assert.deepEqual(
    { new: fresh, grown, gone },
    { new: [], grown: [], gone: [] },
    `split new long files and those grown by more than ${GROWTH} lines; remove gone entries from BASELINE`,
  );
  summary.violations += over.length;
});

test("the README's Layout section states the same allowed edges as LAYERS", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = /^## Layout\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1] ?? "";
  const rows = new Map<string, { value: string[]; types: string[] }>();
  for (const line of section.split("\n")) {
    const cells = /^\|\s*`(\w+)`\s*\|(.*)\|(.*)\|\s*$/.exec(line);
    if (cells === null) continue;
    const names = (cell: string): string[] => [...cell.matchAll(/`(\w+)`/g)].map((m) => m[1]!).sort();
    rows.set(cells[1]!, { value: names(cells[2]!), types: names(cells[3]!) });
  }
  const expected = new Map(
    Object.entries(LAYERS).map(([layer, allowed]) => [
      layer,
      { value: [...allowed].sort(), types: [...(TYPE_ONLY[layer] ?? [])].sort() },
    ]),
  );
  assert.deepEqual(
    rows,
    expected,
    `README.md ## Layout table differs from LAYERS/TYPE_ONLY; it reads:\n${layoutTable()}`,
  );
});

/** The README's table as LAYERS and TYPE_ONLY say it (printed when the README differs). */
function layoutTable(): string {
  const cell = (names: string[]) => names.map((n) => `\`${n}\``).join(" ");
  const rows = Object.entries(LAYERS).map(([layer, allowed]) => [
    `\`${layer}\``,
    cell(allowed),
    cell(TYPE_ONLY[layer] ?? []),
  ]);
  const all = [["layer", "may import", "type-only, also"], ...rows];
  const width = [0, 1, 2].map((c) => Math.max(...all.map((r) => r[c]!.length)));
  const line = (r: string[]) => `| ${r.map((x, c) => x.padEnd(width[c]!)).join(" | ")} |`;
  return [line(all[0]!), line(width.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

test.after(() => {
  console.log(
    `layering: ${files.length} files, ${summary.edges} cross-layer imports checked, ` +
      `${summary.violations} violations in the baseline, ${summary.over} files over ${MAX_LINES} lines`,
  );
});

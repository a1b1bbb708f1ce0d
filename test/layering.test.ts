// The layering check of issue 11: src/'s imports must follow the table of allowed edges between its
// top-level folders (LAYERS below, drawn in the README's Layout section, which this test compares with
// it), no src file may take part in an import cycle, and none may be over 400 lines. Issue 11 removed the
// 17 violations the tree had when this check came in; there are none to tolerate. Rule for type-only imports (they load no code, see
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
/** Every layer bench may import (cli imports these and bench). */
const BELOW_BENCH = [
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
];

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
  bench: BELOW_BENCH,
  cli: [...BELOW_BENCH, "bench"],
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

const MAX_LINES = 400;

const files: SourceFile[] = readSourceTree(join(ROOT, "src"));
const paths = new Set(files.map((f) => f.path));
const local = files.flatMap((f) => f.imports.filter((i) => i.to !== undefined));

const summary = { edges: 0 };

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

test("imports follow the allowed edges between layers", () => {
  const found: string[] = [];
  for (const edge of local) {
    const from = layerOf(edge.from);
    const to = layerOf(edge.to!);
    if (from === to) continue;
    summary.edges++;
    const allowed = [...(LAYERS[from] ?? []), ...(edge.kind === "type" ? (TYPE_ONLY[from] ?? []) : [])];
    if (!allowed.includes(to)) {
      found.push(`${edge.from} -> ${edge.to} (${edge.kind} import, ${from} may not import ${to})`);
    }
  }
  assert.deepEqual(found, [], "backward imports: move the code to the layer it belongs to");
});

test("no import cycles between files over value imports", () => {
  const graph = new Map<string, string[]>();
  for (const f of files) {
    graph.set(
      f.path,
      f.imports.filter((i) => i.kind === "value" && i.to !== undefined).map((i) => i.to!),
    );
  }
  const found = cyclesOf([...paths], graph).map((cycle) => cycle.join(" <-> "));
  assert.deepEqual(found, [], "import cycles: give the shared part a module both can import");
});

test(`no src file over ${MAX_LINES} lines`, () => {
  const over = files.filter((f) => f.lines > MAX_LINES).map((f) => `${f.path}: ${f.lines}`);
  assert.deepEqual(over, [], "split long files by job");
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
  console.log(`layering: ${files.length} files, ${summary.edges} cross-layer imports checked`);
});

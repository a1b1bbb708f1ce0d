// The import graph of src/, for the layering check (test/layering.test.ts, issue 11). Each file's import
// specifiers are read from its syntax tree (TypeScript's parser), and each is classed by whether it loads
// code: an import is a *value* import if it survives import elision, i.e. it is still in the JavaScript
// that esbuild emits for the file (the same transform tsx runs and the package's bundle is built with; tsc
// elides the same imports, since the project does not set verbatimModuleSyntax). So `import type`,
// `import { type A }`, an `import { A }` whose A is only used as a type, and `import("./x").T` in a type
// are *type* imports; a side-effect `import "./x"`, `export … from` and `import("./x")` are value imports.
import { readdirSync, readFileSync } from "node:fs";
import { join, posix } from "node:path";
import { transformSync } from "esbuild";
import ts from "typescript";

/** Whether an import loads the imported module at run time. */
export type ImportKind = "value" | "type";

/** One import of one file: its specifier as written and, for a src/ file, the path it resolves to. */
export interface ImportEdge {
  /** The importing file, relative to src/ with `/` separators, e.g. `runtime/load-model.ts`. */
  from: string;
  /** The specifier as written, e.g. `../format/bundle.js` or `node:fs`. */
  specifier: string;
  /** The imported src/ file (relative to src/), or undefined for a package or node: import. */
  to: string | undefined;
  kind: ImportKind;
}

/** One source file: its path relative to src/, its line count and its imports. */
export interface SourceFile {
  path: string;
  lines: number;
  imports: ImportEdge[];
}

/** Every `.ts` file under `dir` (not `.d.ts`), as paths relative to `dir` with `/` separators, sorted. */
export function listTsFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (sub: string): void => {
    for (const entry of readdirSync(join(dir, sub), { withFileTypes: true })) {
      const rel = sub === "" ? entry.name : `${sub}/${entry.name}`;
      if (entry.isDirectory()) walk(rel);
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) out.push(rel);
    }
  };
  walk("");
  return out.sort();
}

/** The module specifiers of `text` (TypeScript or JavaScript), in order of appearance. */
export function specifiersOf(fileName: string, text: string, kind: ts.ScriptKind): string[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.ES2022, true, kind);
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier !== undefined &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      out.push(node.moduleSpecifier.text);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] !== undefined &&
      ts.isStringLiteralLike(node.arguments[0])
    ) {
      out.push(node.arguments[0].text);
    } else if (
      ts.isImportTypeNode(node) &&
      ts.isLiteralTypeNode(node.argument) &&
      ts.isStringLiteral(node.argument.literal)
    ) {
      out.push(node.argument.literal.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

/**
 * The imports of one TypeScript file: every specifier in its syntax tree, classed `value` if it is still
 * imported after esbuild strips the types, `type` otherwise.
 */
export function importsOf(path: string, text: string): { specifier: string; kind: ImportKind }[] {
  const all = specifiersOf(path, text, ts.ScriptKind.TS);
  const emitted = transformSync(text, { loader: "ts", format: "esm", sourcefile: path }).code;
  const values = new Set(specifiersOf(`${path}.js`, emitted, ts.ScriptKind.JS));
  const seen = new Map<string, ImportKind>();
  for (const specifier of all) seen.set(specifier, values.has(specifier) ? "value" : "type");
  for (const specifier of values) seen.set(specifier, "value");
  return [...seen].map(([specifier, kind]) => ({ specifier, kind }));
}

/**
 * The src/ file a relative specifier names (NodeNext: `./x.js` is `./x.ts`), relative to src/, or
 * undefined for a bare or `node:` specifier.
 */
export function resolveSpecifier(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith(".")) return undefined;
  const joined = posix.normalize(posix.join(posix.dirname(from), specifier));
  return joined.replace(/\.js$/, ".ts");
}

/** Reads every `.ts` file under `srcDir` with its line count and resolved imports. */
export function readSourceTree(srcDir: string): SourceFile[] {
  return listTsFiles(srcDir).map((path) => {
    const text = readFileSync(join(srcDir, ...path.split("/")), "utf8");
    const lines = text.endsWith("\n") ? text.split("\n").length - 1 : text.split("\n").length;
    const imports = importsOf(path, text).map(({ specifier, kind }) => ({
      from: path,
      specifier,
      to: resolveSpecifier(path, specifier),
      kind,
    }));
    return { path, lines, imports };
  });
}

/**
 * The layer a src/ file belongs to: its top-level folder (`runtime/load-model.ts` → `runtime`), or for a
 * file directly in src/ its name without extension (`errors.ts` → `errors`, `index.ts` → `index`).
 */
export function layerOf(path: string): string {
  const slash = path.indexOf("/");
  return slash < 0 ? path.replace(/\.ts$/, "") : path.slice(0, slash);
}

/**
 * The strongly connected components with more than one file (import cycles) of a directed graph, each
 * sorted, the list sorted by first member (Tarjan's algorithm, iterative so that depth is unbounded).
 */
export function cyclesOf(nodes: string[], edges: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  for (const root of nodes) {
    if (index.has(root)) continue;
    const work: { node: string; next: number }[] = [{ node: root, next: 0 }];
    index.set(root, counter);
    low.set(root, counter++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const succ = edges.get(frame.node) ?? [];
      if (frame.next < succ.length) {
        const w = succ[frame.next++]!;
        if (!index.has(w)) {
          index.set(w, counter);
          low.set(w, counter++);
          stack.push(w);
          onStack.add(w);
          work.push({ node: w, next: 0 });
        } else if (onStack.has(w)) {
          low.set(frame.node, Math.min(low.get(frame.node)!, index.get(w)!));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent !== undefined) {
        low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      }
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: string[] = [];
        for (;;) {
          const w = stack.pop()!;
          onStack.delete(w);
          component.push(w);
          if (w === frame.node) break;
        }
        if (component.length > 1) out.push(component.sort());
      }
    }
  }
  return out.sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
}

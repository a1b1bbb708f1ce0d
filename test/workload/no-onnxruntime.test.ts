// workload/ never loads onnxruntime (issue 11: the HTTP replayer used to, through bench's machine describer
// and MiniLoader). Checked two ways: statically, no file of src/workload/ reaches src/runtime/ or the
// onnxruntime-node package through value imports, followed transitively across every layer (type-only
// imports load nothing and are not followed); and for real, a child process that imports every workload
// module has no onnxruntime library mapped. Each check is first shown to catch a module that does load
// onnxruntime, so that a broken probe cannot pass.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { loaderArgs } from "../../src/util/own-entry.js";
import { readSourceTree, type SourceFile } from "../support/import-graph.js";

const SRC = fileURLToPath(new URL("../../src/", import.meta.url));
const files: SourceFile[] = readSourceTree(SRC);
const byPath = new Map(files.map((f) => [f.path, f]));
const WORKLOAD = files.map((f) => f.path).filter((p) => p.startsWith("workload/"));

/**
 * What `start` loads that it must not: each src/runtime/ file or onnxruntime-node import reached over value
 * imports, with the chain of files that reaches it.
 */
function onnxruntimeReach(start: string): string[] {
  const found: string[] = [];
  const via = new Map<string, string[]>([[start, [start]]]);
  const queue = [start];
  while (queue.length > 0) {
    const path = queue.shift()!;
    const chain = via.get(path)!;
    if (path.startsWith("runtime/")) found.push(chain.join(" -> "));
    for (const edge of byPath.get(path)?.imports ?? []) {
      if (edge.kind !== "value") continue;
      if (edge.specifier === "onnxruntime-node" || edge.specifier.startsWith("onnxruntime-node/")) {
        found.push([...chain, edge.specifier].join(" -> "));
      } else if (edge.to !== undefined && !via.has(edge.to)) {
        via.set(edge.to, [...chain, edge.to]);
        queue.push(edge.to);
      }
    }
  }
  return found;
}

/** Whether a fresh node process that imports `modules` (src/-relative) has onnxruntime's library mapped. */
async function mapsOnnxruntime(modules: string[]): Promise<boolean> {
  const urls = modules.map((m) => pathToFileURL(join(SRC, m)).href);
  const script = [
    'import { readFileSync } from "node:fs";',
    `for (const url of ${JSON.stringify(urls)}) await import(url);`,
    'const maps = readFileSync("/proc/self/maps", "utf8");',
    "process.stdout.write(JSON.stringify(/onnxruntime/.test(maps)));",
  ].join("\n");
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [...loaderArgs(), "--input-type=module", "-e", script],
    { encoding: "utf8" },
  );
  return JSON.parse(stdout) as boolean;
}

test("the probe sees a path to onnxruntime where there is one", () => {
  const reach = onnxruntimeReach("serve/function/model-host.ts");
  assert.ok(reach.length > 0, "the function server's model host loads the runtime");
  assert.match(reach[0]!, /^serve\/function\/model-host\.ts -> runtime\//);
  assert.ok(onnxruntimeReach("runtime/ort-adapter.ts").some((c) => c.endsWith("-> onnxruntime-node")));
});

test("no workload module reaches src/runtime/ or onnxruntime-node through value imports", () => {
  assert.ok(
    WORKLOAD.includes("workload/replay.ts"),
    `workload/ has its replayer (found ${WORKLOAD.join(", ")})`,
  );
  const reached = WORKLOAD.flatMap(onnxruntimeReach);
  assert.deepEqual(reached, [], "workload modules must not load the runtime (onnxruntime) by any path");
});

test("a process that imports every workload module maps no onnxruntime library", async () => {
  assert.equal(await mapsOnnxruntime(["runtime/ort-adapter.ts"]), true, "the probe sees onnxruntime loaded");
  assert.equal(await mapsOnnxruntime(WORKLOAD), false, `importing ${WORKLOAD.join(", ")} loaded onnxruntime`);
});

// Test helper of the bundle fuzzer: the catalogue's edits of derived forms in the cache (MiniLoader's
// entry, PISeL's stage files, ort-best's model). None is re-signed: each plays corruption or a hostile
// cache index, and the next load after it must be correct again (evicted and rebuilt, or bypassed).
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import type { EditSpec } from "./fuzz-edits.js";
import {
  cacheEntryDir,
  canary,
  crcOf,
  editModel,
  flipInlineFloat,
  relocateExternal,
  symlinkOver,
  type MutationContext,
} from "./fuzz-files.js";

/** A cache entry's file (the kind's one entry). */
const cacheFile = (ctx: MutationContext, kind: string, file: string) => {
  const dir = cacheEntryDir(ctx.cache, kind);
  if (!dir) throw new Error(`the pristine cache has no ${kind} entry`);
  return join(dir, file);
};

/** Every string value of an index file (entry.json, index.json) that names `suffix` files, replaced. */
const redirectIndex = (path: string, suffix: string, to: string) => {
  const text = readFileSync(path, "utf8");
  const json = JSON.parse(text) as unknown;
  let n = 0;
  const walk = (v: unknown): unknown => {
    if (typeof v === "string" && v.endsWith(suffix)) {
      n++;
      return to;
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === "object")
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  writeFileSync(path, JSON.stringify(walk(json), null, 2));
  if (!n) throw new Error(`${path} names no ${suffix} file`);
};

function cacheEdits(): Record<string, EditSpec> {
  const heal = { warm: true, heal: true };
  const flip = (kind: string, file: string) => (c: MutationContext) => {
    if (!flipInlineFloat(cacheFile(c, kind, file), c.random)) throw new Error(`${file}: no inline float`);
  };
  const flipData = (kind: string, file: string) => (c: MutationContext) => {
    const path = cacheFile(c, kind, file);
    const bytes = readFileSync(path);
    bytes[8 * 4 + 3] = bytes[8 * 4 + 3]! ^ 0x40;
    writeFileSync(path, bytes);
  };
  return {
    "cache-whole-inline-float": {
      ...heal,
      what: "exponent bit of an inline float of MiniLoader's whole.onnx",
      apply: flip("miniloader", "whole.onnx"),
    },
    "cache-stage-inline-float": {
      ...heal,
      what: "exponent bit of an inline float of MiniLoader's stage-001.onnx",
      apply: flip("miniloader", "stage-001.onnx"),
    },
    "cache-pisel-float": {
      ...heal,
      what: "exponent bit of an embedded weight of PISeL's stage-001.onnx",
      apply: flip("pisel", "stage-001.onnx"),
    },
    "cache-ortbest-inline-float": {
      ...heal,
      what: "exponent bit of an inline float of ort-best's model.onnx",
      apply: flip("ort-best", "model.onnx"),
    },
    "cache-whole-data-float": {
      ...heal,
      what: "exponent bit of a weight in MiniLoader's whole.data",
      apply: flipData("miniloader", "whole.data"),
    },
    "cache-ortbest-data-float": {
      ...heal,
      what: "exponent bit of a weight in ort-best's model.data",
      apply: flipData("ort-best", "model.data"),
    },
    "cache-entry-escape": {
      ...heal,
      what: "MiniLoader's entry.json names ../../../canary/stage-1.onnx for its graphs",
      apply: (c) =>
        redirectIndex(
          cacheFile(c, "miniloader", "entry.json"),
          ".onnx",
          relative(cacheEntryDir(c.cache, "miniloader")!, canary(c, "stage-1.onnx")),
        ),
    },
    "cache-entry-absolute": {
      ...heal,
      what: "MiniLoader's entry.json names an absolute path outside the entry for its data files",
      apply: (c) => redirectIndex(cacheFile(c, "miniloader", "entry.json"), ".data", canary(c, "canary.bin")),
    },
    "cache-graph-location-escape": {
      ...heal,
      what: "MiniLoader's whole.onnx names external data ../../../../canary/canary.bin",
      apply: (c) => {
        const path = cacheFile(c, "miniloader", "whole.onnx");
        editModel(
          path,
          (m) =>
            void relocateExternal(
              m,
              relative(cacheEntryDir(c.cache, "miniloader")!, canary(c, "canary.bin")),
            ),
        );
      },
    },
    "cache-entry-dir-symlink": {
      ...heal,
      what: "MiniLoader's entry directory is a symlink to an exact copy of it outside the cache",
      apply: (c) => {
        const dir = cacheEntryDir(c.cache, "miniloader")!;
        cpSync(dir, canary(c, "entry-copy"), { recursive: true });
        symlinkOver(dir, canary(c, "entry-copy"));
      },
    },
    "cache-whole-resigned-location": {
      ...heal,
      what: "MiniLoader's whole.onnx names external data ../../../../canary/canary.bin and entry.json its new checksum",
      apply: (c) => {
        const dir = cacheEntryDir(c.cache, "miniloader")!;
        const bytes = editModel(
          join(dir, "whole.onnx"),
          (m) => void relocateExternal(m, relative(dir, canary(c, "canary.bin"))),
        );
        const index = JSON.parse(readFileSync(join(dir, "entry.json"), "utf8")) as {
          whole?: Record<string, unknown>;
        };
        if (index.whole && "modelChecksum" in index.whole) index.whole.modelChecksum = crcOf(bytes);
        writeFileSync(join(dir, "entry.json"), JSON.stringify(index, null, 2));
      },
    },
    "cache-data-symlink": {
      ...heal,
      what: "MiniLoader's whole.data is a symlink to an exact copy outside the entry",
      apply: (c) => {
        const path = cacheFile(c, "miniloader", "whole.data");
        cpSync(path, canary(c, "whole-copy.data"));
        symlinkOver(path, canary(c, "whole-copy.data"));
      },
    },
  };
}

/** The cache edits, by name. */
export const CACHE_EDITS: Record<string, EditSpec> = cacheEdits();

// config.ts is where every CICADA_* environment variable is listed: a variable read anywhere in src/ and
// missing from ENV (or listed and read nowhere) fails here. Warning codes (process.emitWarning's `code`)
// share the prefix and are not variables.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { DEFAULTS, defaultCacheRoot, ENV, HAZARDS, STRATEGIES } from "../src/config.js";

const SRC = fileURLToPath(new URL("../src/", import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith(".ts") ? [path] : [];
  });
}

test("every CICADA_* variable src/ reads is listed in config.ts's ENV, and every listed one is read", () => {
  const read = new Set<string>();
  const warnings = new Set<string>();
  for (const file of sources(SRC)) {
    if (file.endsWith("config.ts")) continue;
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/\bCICADA_[A-Z_]+\b/g)) read.add(m[0]);
    for (const m of text.matchAll(/code:\s*"(CICADA_[A-Z_]+)"/g)) warnings.add(m[1]!);
  }
  const variables = [...read].filter((v) => !warnings.has(v)).sort();
  assert.deepEqual(variables, Object.keys(ENV).sort());
});

test("the defaults are consistent: the hazard default is a hazard, the cache root follows the environment", () => {
  assert.ok(HAZARDS.includes(DEFAULTS.hazard));
  assert.equal(STRATEGIES.length, new Set(STRATEGIES).size);
  assert.equal(defaultCacheRoot({ CICADA_CACHE: "/c" }), "/c");
  assert.equal(defaultCacheRoot({ XDG_CACHE_HOME: "/x" }), join("/x", "cicada"));
});

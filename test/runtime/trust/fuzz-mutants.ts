// Test helper of the bundle fuzzer: the list of mutants of a run. First the whole catalogue of semantic
// edits (fuzz-edits.ts), then seeded byte-level mutants (byte flips, bit flips, truncations, garbage
// appended) of every file of the bundle and of every derived form in the cache, up to the requested count.
// A mutant is plain data: its id, seed and target reproduce it exactly (CICADA_FUZZ_ONLY=<id>).
import { SeededRandom } from "../../../src/util/seeded-random.js";
import { EDITS } from "./fuzz-edits.js";
import type { ByteHow } from "./fuzz-files.js";

/** One mutant, as the child applies it. */
export interface Mutant {
  id: string;
  what: string;
  /** A catalogue edit, or a byte-level mutation of a file by role. */
  edit?: string;
  bytes?: { role: string; how: ByteHow };
  seed: number;
  /** Start from the pristine cache (else an empty one). */
  warm: boolean;
  expect: "reference" | "sequential";
  stagedOnly: boolean;
  /** After the first load, the next load must be correct (cache mutants). */
  heal: boolean;
}

/** Files of the fuzz bundle (three stages) and of its derived forms, by role. */
export const BUNDLE_ROLES = [
  "bundle:manifest.json",
  "bundle:stages/000.onnx",
  "bundle:stages/001.onnx",
  "bundle:stages/002.onnx",
  "bundle:weights.safetensors",
];
export const CACHE_ROLES = [
  ...["000", "001", "002"].flatMap((n) => [
    `cache:miniloader:stage-${n}.onnx`,
    `cache:miniloader:stage-${n}.data`,
  ]),
  "cache:miniloader:whole.onnx",
  "cache:miniloader:whole.data",
  "cache:miniloader:entry.json",
  "cache:pisel:stage-000.onnx",
  "cache:pisel:stage-001.onnx",
  "cache:pisel:stage-002.onnx",
  "cache:ort-best:model.onnx",
  "cache:ort-best:model.data",
];
const HOWS: ByteHow[] = ["flip", "flip", "bit", "truncate", "extend"];

/** The catalogue's mutants, in catalogue order. */
export function catalogueMutants(seed: number): Mutant[] {
  return Object.entries(EDITS).map(([name, e]) => ({
    id: name,
    what: e.what,
    edit: name,
    seed,
    warm: e.warm ?? false,
    expect: e.expect ?? "reference",
    stagedOnly: e.stagedOnly ?? false,
    heal: e.heal ?? false,
  }));
}

/** `count` seeded byte-level mutants, cycling over every role so that each file is hit. */
export function byteMutants(count: number, seed: number): Mutant[] {
  const random = new SeededRandom(seed, "byte-mutants");
  const roles = [...BUNDLE_ROLES, ...CACHE_ROLES];
  const out: Mutant[] = [];
  const offset = Math.floor(random.next() * roles.length);
  for (let i = 0; i < count; i++) {
    const role = roles[(offset + i) % roles.length]!;
    const how = HOWS[Math.floor(random.next() * HOWS.length)]!;
    const cache = role.startsWith("cache:");
    const warm = cache || random.next() < 0.5;
    out.push({
      id: `bytes-${i}-${how}-${role.replace(/[:/]/g, "_")}`,
      what: `${how} ${role}${cache ? "" : warm ? " (from the pristine cache)" : " (empty cache)"}`,
      bytes: { role, how },
      seed: seed * 100_003 + i,
      warm,
      expect: "reference",
      stagedOnly: false,
      heal: cache,
    });
  }
  return out;
}

/** The run's mutants: the catalogue, then byte-level ones up to `total` (at least the catalogue). */
export function fuzzMutants(total: number, seed: number): Mutant[] {
  const catalogue = catalogueMutants(seed);
  return [...catalogue, ...byteMutants(Math.max(0, total - catalogue.length), seed)];
}

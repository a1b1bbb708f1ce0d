import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isCicadaError } from "../../src/errors.js";
import {
  PAGE_BYTES,
  parseSafetensorsHeader,
  planSafetensors,
  readSafetensorsHeader,
  safetensorsDType,
  type PlanEntry,
} from "../../src/format/safetensors.js";

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "cicada-st-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A file with `header` as its JSON header (unpadded) and `dataBytes` zero bytes of data. */
function fileWith(header: unknown, dataBytes: number): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const out = Buffer.alloc(8 + json.length + dataBytes);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  return out;
}

const entries: PlanEntry[] = [
  { key: "a", dtype: "F32", shape: [3], byteLength: 12, alignment: PAGE_BYTES },
  { key: "b", dtype: "I64", shape: [2, 2], byteLength: 32, alignment: 64 },
  { key: "empty", dtype: "F16", shape: [0, 5], byteLength: 0, alignment: 64 },
  { key: "c", dtype: "U8", shape: [5000], byteLength: 5000, alignment: PAGE_BYTES },
  { key: "d", dtype: "BOOL", shape: [], byteLength: 1, alignment: 1 },
];

test("the planner aligns entries with padding entries and pages the data section", async () => {
  const plan = planSafetensors(entries, { note: "x" });
  assert.equal(plan.dataStart % PAGE_BYTES, 0);
  assert.equal(plan.header.length, plan.dataStart);
  const [a, b, empty, c, d] = plan.entries;
  assert.equal(a!.offset, plan.dataStart);
  assert.equal(b!.offset, plan.dataStart + 64);
  assert.equal(empty!.offset, plan.dataStart + 128);
  assert.equal(c!.offset, plan.dataStart + PAGE_BYTES);
  assert.equal(d!.offset, c!.offset + 5000);
  assert.equal(plan.fileBytes, d!.offset + 1);
  assert.equal(plan.paddingBytes, 52 + 32 + (PAGE_BYTES - 128));

  await withTemp(async (dir) => {
    const path = join(dir, "w.safetensors");
    const file = Buffer.alloc(plan.fileBytes);
    Buffer.from(plan.header).copy(file, 0);
    await writeFile(path, file);
    const header = await readSafetensorsHeader(path);
    assert.equal(header.dataStart, plan.dataStart);
    assert.deepEqual(header.metadata, { note: "x" });
    const byKey = new Map(header.tensors.map((t) => [t.key, t]));
    for (const e of plan.entries) assert.equal(byKey.get(e.key)!.offset, e.offset);
    const pads = header.tensors.filter((t) => t.key.startsWith("__pad."));
    assert.equal(pads.length, 3);
    assert.ok(pads.every((p) => p.dtype === "U8" && p.shape.length === 1));
    // The JSON header is followed by spaces up to the page (allowed by the format).
    assert.equal(file[plan.dataStart - 1], 0x20);
  });
});

test("padding keys never collide with tensor keys", () => {
  const plan = planSafetensors([
    { key: "__pad.0", dtype: "U8", shape: [1], byteLength: 1, alignment: 1 },
    { key: "x", dtype: "F32", shape: [1], byteLength: 4, alignment: 64 },
  ]);
  const json = Buffer.from(plan.header).subarray(8).toString().trim();
  const header = parseSafetensorsHeader(json, plan.dataStart - 8, plan.fileBytes, "mem");
  assert.deepEqual(
    header.tensors.map((t) => t.key),
    ["__pad.0", "___pad.0", "x"],
  );
});

test("the planner refuses inconsistent entries", () => {
  const bad = (e: Partial<PlanEntry>, pattern: RegExp) =>
    assert.throws(
      () => planSafetensors([{ key: "k", dtype: "F32", shape: [2], byteLength: 8, alignment: 64, ...e }]),
      (err) => isCicadaError(err, "E_SAFETENSORS") && pattern.test(err.message),
    );
  bad({ byteLength: 7 }, /'k' has shape \[2\] of F32 \(8 bytes\) but byteLength 7/);
  bad({ alignment: 48 }, /alignment 48/);
  bad({ alignment: 8192 }, /alignment 8192/);
  bad({ key: "__metadata__" }, /reserved/);
  assert.throws(() => planSafetensors([...entries, entries[0]!]), /'a' is used twice/);
});

test("the reader validates the header and names the file and key", async () => {
  await withTemp(async (dir) => {
    const path = join(dir, "bad.safetensors");
    const expectBad = async (bytes: Buffer, pattern: RegExp) => {
      await writeFile(path, bytes);
      await assert.rejects(
        readSafetensorsHeader(path),
        (e) => isCicadaError(e, "E_SAFETENSORS") && e.message.includes(path) && pattern.test(e.message),
      );
    };
    const t = (dtype: string, shape: number[], begin: number, end: number) => ({
      dtype,
      shape,
      data_offsets: [begin, end],
    });
    await expectBad(Buffer.alloc(5), /too short/);
    const huge = Buffer.alloc(16);
    huge.writeBigUInt64LE(1000n, 0);
    await expectBad(huge, /header length 1000 does not fit/);
    const notJson = fileWith({}, 0);
    notJson.write("[", 8);
    await expectBad(notJson, /not valid JSON/);
    await expectBad(fileWith([1, 2], 0), /not a JSON object/);
    await expectBad(fileWith({ w: t("F33", [1], 0, 4) }, 4), /'w' has unknown dtype "F33"/);
    await expectBad(fileWith({ w: t("F32", [-1], 0, 4) }, 4), /'w' has shape \[-1\]/);
    await expectBad(
      fileWith({ w: t("F32", [2], 0, 4) }, 4),
      /'w' spans bytes 0\.\.4 \(4\) but shape \[2\] of F32 needs 8/,
    );
    await expectBad(
      fileWith({ w: t("F32", [1], 0, 4), v: t("F32", [1], 8, 12) }, 12),
      /'v' starts at data byte 8, leaving a hole/,
    );
    await expectBad(fileWith({ w: t("F32", [2], 0, 8), v: t("F32", [1], 4, 8) }, 8), /overlapping/);
    await expectBad(fileWith({ w: t("F32", [1], 0, 4) }, 2), /'w' ends at data byte 4, past the end/);
    await expectBad(fileWith({ w: t("F32", [1], 0, 4) }, 6), /cover 4 data bytes but the data section has 6/);
    await expectBad(fileWith({ __metadata__: { n: 1 } }, 0), /__metadata__\.n is number/);
    await expectBad(fileWith({ w: { dtype: "F32", shape: [1] } }, 4), /'w' has data_offsets undefined/);
  });
});

test("element types map to safetensors dtypes; strings have none", () => {
  assert.equal(safetensorsDType("float32"), "F32");
  assert.equal(safetensorsDType("bfloat16"), "BF16");
  assert.equal(safetensorsDType("bool"), "BOOL");
  assert.equal(safetensorsDType("uint64"), "U64");
  assert.equal(safetensorsDType("string"), undefined);
});

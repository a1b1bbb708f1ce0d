import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isCicadaError } from "../../src/errors.js";
import { writeOutputDir } from "../../src/format/atomic-output.js";

test("an output directory appears only when complete, and a failure leaves nothing", async () => {
  const root = await mkdtemp(join(tmpdir(), "cicada-atomic-"));
  try {
    const dest = join(root, "out");
    await assert.rejects(
      writeOutputDir(dest, async (dir) => {
        await writeFile(join(dir, "half.txt"), "partial");
        throw new Error("boom");
      }),
      /boom/,
    );
    assert.deepEqual(await readdir(root), []);
    await writeOutputDir(dest, async (dir) => writeFile(join(dir, "whole.txt"), "done"));
    assert.ok(existsSync(join(dest, "whole.txt")));
    await assert.rejects(
      writeOutputDir(dest, async () => {}),
      (e) => isCicadaError(e, "E_OUTPUT_EXISTS") && e.message.includes(dest),
    );
    assert.deepEqual(await readdir(root), ["out"]);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

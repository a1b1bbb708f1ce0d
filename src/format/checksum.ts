// Checksums of what the runtime executes from: crc32 for weight ranges and cached data files (fast
// enough to verify as they stream past; catches corruption), sha256 for stage graphs (small; also
// what cache keys are built from, where a collision must not be forgeable).
import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import { crc32 } from "node:zlib";

/** `crc32:` and 8 hex digits. */
export function crc32Of(bytes: Uint8Array, previous = 0): string {
  return formatCrc32(crc32(bytes, previous));
}

/** A crc32 value as `crc32:` and 8 hex digits. */
export function formatCrc32(value: number): string {
  return `crc32:${value.toString(16).padStart(8, "0")}`;
}

/** `sha256:` and 64 hex digits. */
export function sha256Of(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** sha256 of a whole file, streamed. */
export async function fileSha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  const handle = await open(path, "r");
  try {
    for await (const chunk of handle.createReadStream({ highWaterMark: 8 << 20 }))
      hash.update(chunk as Buffer);
  } finally {
    await handle.close();
  }
  return `sha256:${hash.digest("hex")}`;
}

/** The checksum of a file in the form of `expected` (`crc32:` or `sha256:`). */
export function fileChecksumLike(path: string, expected: string): Promise<string> {
  return expected.startsWith("sha256:") ? fileSha256(path) : fileCrc32(path);
}

/** crc32 of a whole file, read in 8 MiB chunks. */
export async function fileCrc32(path: string): Promise<string> {
  const handle = await open(path, "r");
  const chunk = Buffer.allocUnsafe(8 << 20);
  let value = 0;
  try {
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      value = crc32(chunk.subarray(0, bytesRead), value);
    }
  } finally {
    await handle.close();
  }
  return formatCrc32(value);
}

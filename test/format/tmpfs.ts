// Real small file systems for the full-disk and read-only tests: a tmpfs of a given size (or mounted
// read-only) in a temp directory. Mounting needs privileges (root, CAP_SYS_ADMIN): where it is refused the
// caller skips with the reason, rather than faking the failure.
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A mounted tmpfs; `unmount` removes it and its mount point. */
export interface Tmpfs {
  dir: string;
  unmount(): Promise<void>;
}

/**
 * Mounts a tmpfs of `sizeBytes` (read-only with `readOnly`, after `prepare` filled it) or returns the
 * reason it cannot.
 */
export async function mountTmpfs(
  sizeBytes: number,
  options: { readOnly?: boolean; prepare?: (dir: string) => void } = {},
): Promise<Tmpfs | { skip: string }> {
  const dir = await mkdtemp(join(tmpdir(), "cicada-tmpfs-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeBytes},mode=0755`, "tmpfs", dir], {
      stdio: "pipe",
    });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim().split("\n")[0];
    return { skip: `cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): ${stderr || (e as Error).message}` };
  }
  const unmount = async () => {
    execFileSync("umount", ["-l", dir], { stdio: "pipe" });
    await rm(dir, { recursive: true, force: true });
  };
  try {
    options.prepare?.(dir);
    if (options.readOnly) execFileSync("mount", ["-o", "remount,ro", dir], { stdio: "pipe" });
  } catch (e) {
    await unmount();
    return { skip: `cannot remount the tmpfs read-only: ${(e as Error).message}` };
  }
  return { dir, unmount };
}

// For the tests that exercise the package as shipped (bin/ entry points, the packed tarball): dist/ must
// be compiled from the current sources. `npm test` builds first (pretest); a test file run on its own
// builds here. The build is incremental (dist/.tsbuildinfo: a no-op rebuild rewrites nothing and takes
// about a second), and serialised across the test processes that run in parallel by a lock directory, so
// that no process reads a file another is writing.
import { execFile } from "node:child_process";
import { mkdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createHash } from "node:crypto";

/** The package's root directory. */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");
const LOCK = join(
  tmpdir(),
  `cicada-build-${createHash("sha256").update(ROOT).digest("hex").slice(0, 12)}.lock`,
);
/** A lock older than this is left over by a killed process. */
const STALE_MS = 180_000;

let built: Promise<void> | undefined;

async function acquire(deadline: number): Promise<void> {
  for (;;) {
    try {
      await mkdir(LOCK);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const age = await stat(LOCK).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age > STALE_MS) await rm(LOCK, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`the build lock ${LOCK} was held for too long`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function build(): Promise<void> {
  await acquire(Date.now() + 240_000);
  try {
    await promisify(execFile)(process.execPath, [TSC, "-p", join(ROOT, "tsconfig.build.json")], {
      cwd: ROOT,
      maxBuffer: 16 << 20,
    }).catch((e: { code?: number; stdout?: string; message: string }) => {
      // Exit code 2: type errors, every file emitted anyway. The type check (pretest) reports those;
      // what these tests run is the emitted JavaScript.
      if (e.code === 2) process.stderr.write(`build: type errors (JavaScript emitted):\n${e.stdout}\n`);
      else throw new Error(`npm run build failed:\n${e.stdout ?? e.message}`);
    });
    // The second half of the build: the entry points bundled (scripts/bundle.mjs).
    await promisify(execFile)(process.execPath, [join(ROOT, "scripts", "bundle.mjs")], { cwd: ROOT });
  } finally {
    await rm(LOCK, { recursive: true, force: true });
  }
}

/** Compiles src/ into dist/ if anything changed; once per test process. */
export function ensureBuilt(): Promise<void> {
  built ??= build();
  return built;
}

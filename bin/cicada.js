#!/usr/bin/env node
// Entry point of the `cicada` command: the compiled command under dist/ (`npm run build`, which `prepare`
// and `prepack` run, so that an install from the registry, a tarball or git has it). Development runs the
// TypeScript sources instead: `npm run cicada -- ARGS` (through tsx).
import { existsSync } from "node:fs";

const main = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(
    `cicada: ${main.pathname} is missing: run \`npm run build\` in the package (or \`npm run cicada -- ARGS\` to run the sources)\n`,
  );
  process.exit(1);
}
await import(main.href);

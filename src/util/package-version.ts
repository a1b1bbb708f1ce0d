// This package's own version, read once from its package.json: what the function server's and the
// gateway's `GET /v2` report. NOTE: read relative to this file, which sits one level below src/ (dist/ when
// compiled) as the bundles sit one level below dist/ (scripts/bundle.mjs), so the same relative URL finds
// package.json from every form the package runs in; modules in deeper folders import it from here.
import { readFileSync } from "node:fs";

/** The `version` field of this package's package.json. */
export const PACKAGE_VERSION: string = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

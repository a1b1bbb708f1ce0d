#!/usr/bin/env node
// Entry point of the `cicada` command. The project runs its TypeScript sources through tsx's loader
// (no build step to forget); worker threads are started with the same loader.
import { register } from "tsx/esm/api";
import { fileURLToPath, pathToFileURL } from "node:url";
import { dirname, join } from "node:path";

register();
const root = dirname(dirname(fileURLToPath(import.meta.url)));
await import(pathToFileURL(join(root, "src", "cli", "main.ts")).href);

// `cicada report <dir>... [--out <dir>]`: one report.md and its charts from one or several `cicada bench
// --out` directories (or trees of them, such as bench/results/<machine>-<date>/), covering every model ×
// scenario × cache found. Inputs are validated before anything is written; the report appears whole.
import type { Command } from "commander";
import { existsSync, statSync } from "node:fs";
import { access, constants } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { CicadaError } from "../../errors.js";
import { readBenchRuns } from "../../report/bench-data.js";
import { writeBenchReport } from "../../report/bench-report.js";

/** Refuses an output directory that cannot be created or written, naming the reason. */
export async function checkReportOut(out: string): Promise<void> {
  let dir = resolve(out);
  while (!existsSync(dir)) dir = dirname(dir);
  if (!statSync(dir).isDirectory()) {
    throw new CicadaError("E_USAGE", `--out ${out}: ${dir} is a file, not a directory`);
  }
  try {
    await access(dir, constants.W_OK);
  } catch {
    throw new CicadaError("E_USAGE", `--out ${out}: cannot write into ${dir}`);
  }
}

/** Registers `cicada report`. */
export function registerReport(program: Command): void {
  program
    .command("report")
    .description("write report.md and SVG charts from cicada bench --out directories (or trees of them)")
    .argument("<dirs...>", "bench --out directories, or directories containing them")
    .option("--out <dir>", "where to write report.md and charts/ (default: the one directory given)")
    .action(async (dirs: string[], flags: { out?: string }) => {
      if (!flags.out && dirs.length > 1) {
        throw new CicadaError(
          "E_USAGE",
          `report: ${dirs.length} directories given; name where the combined report goes with --out`,
        );
      }
      const out = flags.out ?? dirs[0]!;
      await checkReportOut(out);
      const runs = await readBenchRuns(dirs.map((d) => resolve(d)));
      const written = await writeBenchReport(resolve(out), {
        runs,
        command: `cicada report ${dirs.join(" ")}${flags.out ? ` --out ${flags.out}` : ""}`,
      });
      process.stderr.write(
        `report: ${runs.length} run${runs.length === 1 ? "" : "s"} → ${written.report} and ${written.charts.length} charts\n`,
      );
    });
}

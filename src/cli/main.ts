// The `cicada` command: one file per subcommand under commands/, errors printed with their code.
import { Command, CommanderError } from "commander";
import { isCicadaError } from "../errors.js";
import { codedFsError } from "../format/fs-errors.js";
import { registerBench } from "./commands/bench.js";
import { registerBenchServe } from "./commands/bench-serve.js";
import { registerCache } from "./commands/cache.js";
import { registerDemo } from "./commands/demo.js";
import { registerImport } from "./commands/import.js";
import { registerInspect } from "./commands/inspect.js";
import { registerPlatform } from "./commands/platform.js";
import { registerReplay } from "./commands/replay.js";
import { registerReport } from "./commands/report.js";
import { registerRun } from "./commands/run.js";
import { registerServe } from "./commands/serve.js";
import { registerZoo } from "./commands/zoo.js";

const program = new Command("cicada")
  .description("Pipelined cold start of ONNX models on Node.js (the Cicada design)")
  .version("0.1.0")
  .exitOverride()
  .showHelpAfterError();

registerDemo(program);
registerZoo(program);
registerImport(program);
registerInspect(program);
registerRun(program);
registerBench(program);
registerReport(program);
registerCache(program);
registerServe(program);
registerBenchServe(program);
registerPlatform(program);
registerReplay(program);

try {
  await program.parseAsync(process.argv);
} catch (thrown) {
  // A full disk or an unwritable file that reached here uncoded gets its code (E_NO_SPACE, E_CACHE, …).
  const e = await codedFsError(thrown);
  if (e instanceof CommanderError) {
    process.exitCode = e.exitCode;
  } else if (isCicadaError(e)) {
    process.stderr.write(`cicada: ${e.code}: ${e.message}\n`);
    process.exitCode = e.code === "E_USAGE" ? 2 : 1;
  } else {
    process.stderr.write(`cicada: internal error: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 70;
  }
}

// The `cicada` command: one file per subcommand under commands/, errors printed with their code. Only the
// command being run is loaded (command-table.ts): `cicada --help` or `cicada inspect` never loads
// onnxruntime, the runtime or the server.
import { CommanderError } from "commander";
import { isCicadaError } from "../errors.js";
import { codedFsError } from "../format/fs-errors.js";
import { addCommands, commandOf, rootCommand } from "./command-table.js";

const program = rootCommand();

try {
  await addCommands(program, commandOf(process.argv.slice(2)));
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

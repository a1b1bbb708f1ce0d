// The listening line: the one JSON line `cicada serve` and `cicada platform` print on stdout once they
// listen, `{"event":"listening","host":…,"port":…,"pid":…}`, which is how a parent that started one with
// `--port 0` (the platform's pool, serve-process.ts for benchmarks and tests) learns its port. Written and
// read only here, so that the two commands and the two readers cannot drift apart.
import { z } from "zod";
import { CicadaError } from "../../errors.js";

const ListeningSchema = z.object({
  event: z.literal("listening"),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  pid: z.number().int().positive(),
});

/** What a listening line says: where the process listens, and its pid. */
export type ListeningLine = z.infer<typeof ListeningSchema>;

/** The URL origin of `host:port`, an IPv6 address in brackets (`http://[::1]:8080`, not `http://::1:8080`). */
export function httpOrigin(host: string, port: number): string {
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/** The listening line (newline included) of this process listening on `host:port`. */
export function listeningLine(host: string, port: number): string {
  const line: ListeningLine = { event: "listening", host, port, pid: process.pid };
  return `${JSON.stringify(line)}\n`;
}

/**
 * Reads a process's first stdout line as its listening line; E_INSTANCE_START saying what is wrong with it
 * (not JSON, or not the line's shape) otherwise.
 */
export function parseListeningLine(text: string): ListeningLine {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CicadaError("E_INSTANCE_START", `its first stdout line is not JSON: '${text.slice(0, 200)}'`);
  }
  const r = ListeningSchema.safeParse(parsed);
  if (!r.success) {
    throw new CicadaError(
      "E_INSTANCE_START",
      `its listening line is malformed (${r.error.issues[0]?.message}): ${text.slice(0, 200)}`,
    );
  }
  return r.data;
}

// Containment of a stage graph's external references. onnxruntime resolves an external-data location it
// is not given in memory against the model's directory, or the process's working directory for a model
// given as bytes: a stage graph naming `secret.txt` would make it read that file and run on its bytes. So
// before a stage graph reaches onnxruntime (or MiniLoader's optimiser), every tensor anywhere in it
// (initializers, sparse initializers, Constant attributes, subgraphs, functions) that keeps its data
// externally must name the stage's own weight range and lie inside it.
import { CicadaError } from "../errors.js";

/** One external reference found in a decoded model. */
interface ExternalRef {
  name: string;
  location: string | undefined;
  offset: number;
  length: number | undefined;
}

/** Every tensor with external data in a decoded protobuf object tree, at any depth. */
function collect(node: unknown, out: ExternalRef[], depth: number): void {
  if (typeof node !== "object" || node === null || ArrayBuffer.isView(node)) return;
  // NOTE: protobuf decoding bounds nesting; this bound keeps a hand-made object from recursing forever.
  if (depth > 256) throw new CicadaError("E_BUNDLE_LIMIT", "a stage graph is nested more than 256 deep");
  if (Array.isArray(node)) {
    for (const item of node) collect(item, out, depth + 1);
    return;
  }
  const record = node as Record<string, unknown>;
  const entries = record.externalData as { key?: string; value?: string }[] | undefined;
  if (record.dataLocation === 1 || (Array.isArray(entries) && entries.length > 0)) {
    const get = (k: string) => entries?.find((e) => e.key === k)?.value;
    const offset = Number(get("offset") ?? 0);
    const length = get("length");
    out.push({
      name: typeof record.name === "string" ? record.name : "?",
      location: get("location"),
      offset,
      length: length === undefined ? undefined : Number(length),
    });
  }
  for (const value of Object.values(record)) collect(value, out, depth + 1);
}

/**
 * Throws E_BUNDLE_PATH unless every external tensor of `model` names `location` with an explicit range
 * inside `[0, rangeBytes)`. A stage without weights (`rangeBytes` 0) may have no external tensor at all.
 */
export function checkExternalRefs(
  model: unknown,
  location: string,
  rangeBytes: number,
  source: string,
): void {
  const refs: ExternalRef[] = [];
  collect(model, refs, 0);
  for (const r of refs) {
    const where = `${source}: tensor '${r.name}'`;
    if (r.location !== location) {
      throw new CicadaError(
        "E_BUNDLE_PATH",
        `${where} names external data '${r.location ?? "(none)"}'; a stage graph may only name its own weight range '${location}'`,
      );
    }
    const ok =
      r.length !== undefined &&
      Number.isSafeInteger(r.offset) &&
      Number.isSafeInteger(r.length) &&
      r.offset >= 0 &&
      r.length > 0 &&
      r.offset + r.length <= rangeBytes;
    if (!ok) {
      throw new CicadaError(
        "E_BUNDLE_PATH",
        `${where} names bytes ${r.offset}..${r.offset + (r.length ?? NaN)} of '${location}', outside the stage's ${rangeBytes} weight bytes`,
      );
    }
  }
}

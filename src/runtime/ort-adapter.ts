// The one module that imports onnxruntime-node. Everything else speaks HostTensor and the options
// below, so most of the project (and its unit tests) never loads the native addon.
import * as ort from "onnxruntime-node";
import { CicadaError } from "../errors.js";
import type { HostTensor } from "./host-tensor.js";
import type { SessionSource, StageSessionConfig } from "./worker-protocol.js";

export type Session = ort.InferenceSession;

/** Options of one onnxruntime session, as this project uses them. */
export interface SessionConfig {
  /** Graph optimisation: onnxruntime's `all` by default (what a plain user gets). */
  graphOptimizationLevel?: "disabled" | "basic" | "extended" | "all";
  /** Intra-op threads; 0 lets onnxruntime choose. */
  intraOpNumThreads?: number;
  /** Whether idle intra-op threads spin (onnxruntime default: yes). */
  allowSpinning?: boolean;
  /** Save the optimised graph here (onnxruntime `optimizedModelFilePath`). */
  optimizedModelFilePath?: string;
  /** External-data files given as in-memory buffers (path as the model names it). NOTE: copied by onnxruntime. */
  externalData?: { path: string; data: Uint8Array }[];
  /**
   * Whether kernels prepack constant weights at creation (onnxruntime default: yes). Prepacking copies
   * every Gemm/MatMul weight into a kernel-specific layout: creation then costs ~1-3 ms per MiB and private
   * memory the size of those weights, which is why MiniLoader turns it off (see docs/runtime-measurements.md).
   */
  prepacking?: boolean;
  /** onnxruntime session config entries (`session.*` keys without the prefix), e.g. saving options. */
  sessionConfigEntries?: Record<string, string>;
  /**
   * Whether the session keeps freed activations in its own CPU arena and plans them as one block
   * (onnxruntime's default: yes). Off, activations go back to the allocator as soon as they die: what a
   * memory budget needs, since every stage session's arena otherwise holds its peak for the model's life.
   */
  memoryArena?: boolean;
  /** onnxruntime log severity: 0 verbose .. 4 fatal (default 2: warnings). */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
}

function sessionOptions(config: SessionConfig): ort.InferenceSession.SessionOptions {
  const options: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: config.graphOptimizationLevel ?? "all",
    executionMode: "sequential",
  };
  if (config.intraOpNumThreads !== undefined) options.intraOpNumThreads = config.intraOpNumThreads;
  if (config.optimizedModelFilePath) options.optimizedModelFilePath = config.optimizedModelFilePath;
  if (config.externalData) options.externalData = config.externalData;
  if (config.logSeverityLevel !== undefined) options.logSeverityLevel = config.logSeverityLevel;
  if (config.memoryArena === false) {
    options.enableCpuMemArena = false;
    options.enableMemPattern = false;
  }
  // NOTE: onnxruntime-node flattens `extra` into session config entries ("session.intra_op.allow_spinning").
  const session: Record<string, unknown> = {};
  if (config.allowSpinning === false) {
    session.intra_op = { allow_spinning: "0" };
    session.inter_op = { allow_spinning: "0" };
  }
  if (config.prepacking === false) session.disable_prepacking = "1";
  for (const [key, value] of Object.entries(config.sessionConfigEntries ?? {})) session[key] = value;
  if (Object.keys(session).length) options.extra = { session };
  return options;
}

/** Creates a session from a stage source: a model path, or model bytes with in-memory external data. */
export function createSessionFrom(source: SessionSource, config: StageSessionConfig): Promise<Session> {
  if ("path" in source) return createSession(source.path, config);
  return createSession(source.bytes, {
    ...config,
    ...(source.externalData ? { externalData: source.externalData } : {}),
  });
}

/** Creates a session from a model path or model bytes. */
export async function createSession(
  model: string | Uint8Array,
  config: SessionConfig = {},
): Promise<Session> {
  try {
    return typeof model === "string"
      ? await ort.InferenceSession.create(model, sessionOptions(config))
      : await ort.InferenceSession.create(model, sessionOptions(config));
  } catch (e) {
    const what = typeof model === "string" ? model : `<${model.byteLength} model bytes>`;
    throw new CicadaError(
      "E_RUNTIME",
      `onnxruntime could not create a session for ${what}: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
}

function toOrt(t: HostTensor): ort.Tensor {
  return new ort.Tensor(t.dtype as ort.Tensor.Type, t.data as ort.Tensor.DataType, t.dims);
}

function fromOrt(t: ort.Tensor): HostTensor {
  return { dtype: t.type as HostTensor["dtype"], dims: [...t.dims], data: t.data as HostTensor["data"] };
}

/** Runs a session; `outputs` restricts which outputs are fetched. */
export async function runSession(
  session: Session,
  feeds: Record<string, HostTensor>,
  outputs?: readonly string[],
): Promise<Record<string, HostTensor>> {
  const ortFeeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = toOrt(t);
  let result: ort.InferenceSession.ReturnType;
  try {
    result = outputs ? await session.run(ortFeeds, outputs) : await session.run(ortFeeds);
  } catch (e) {
    throw new CicadaError("E_RUNTIME", `onnxruntime failed to run: ${(e as Error).message}`, { cause: e });
  }
  const out: Record<string, HostTensor> = {};
  for (const [name, t] of Object.entries(result)) out[name] = fromOrt(t);
  return out;
}

/** onnxruntime-node's version. */
export const ORT_VERSION: string = ort.env.versions.node ?? "unknown";

/** Frees a session's native resources. */
export async function releaseSession(session: Session): Promise<void> {
  await session.release();
}

// What a replay experiment runs: the same arrivals once per policy × strategy. The names of the
// platform's policies live here, below the platform, because everything that names runs needs them
// without loading the platform: the CLI's flags, the report's ordering and its validation of a results
// directory (report/replay-data.ts). The platform implements each name (serve/platform/policies.ts).
import type { StrategyName } from "../config.js";

/** The platform's policies, in the order reports list them. */
export const POLICIES = ["stateless", "keep-alive", "preload", "shared-weights"] as const;
export type PolicyName = (typeof POLICIES)[number];

/** True if `name` is a policy. */
export function isPolicy(name: string): name is PolicyName {
  return (POLICIES as readonly string[]).includes(name);
}

/** One policy × strategy to replay. */
export interface RunSpec {
  policy: PolicyName;
  strategy: StrategyName;
}

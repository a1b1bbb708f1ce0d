// Parsing and checking of CLI flag values: every flag that crosses into the program is validated here,
// with an error that names the flag and says what was expected.
import { CicadaError } from "../errors.js";
import { isStrategy, STRATEGIES, type StrategyName } from "../config.js";

/** Parses an integer flag within [min, max]. */
export function intFlag(flag: string, value: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    const range =
      max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    throw new CicadaError("E_USAGE", `${flag} must be ${range}, found '${value}'`);
  }
  return n;
}

/** Parses a positive number flag. */
export function positiveFlag(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new CicadaError("E_USAGE", `${flag} must be a positive number, found '${value}'`);
  return n;
}

/** Checks a flag's value is one of `choices`. */
export function choiceFlag<T extends string>(flag: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) {
    throw new CicadaError("E_USAGE", `${flag} must be one of ${choices.join(", ")}, found '${value}'`);
  }
  return value as T;
}

/** Splits a comma-separated flag value; E_USAGE when it names nothing. */
export function listFlag(flag: string, value: string): string[] {
  const items = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0)
    throw new CicadaError("E_USAGE", `${flag} must name at least one item, found '${value}'`);
  return [...new Set(items)];
}

/** Parses --strategies: each one known (E_USAGE names the valid ones), duplicates dropped. */
export function parseStrategies(value: string): StrategyName[] {
  return listFlag("--strategies", value).map((s) => {
    if (!isStrategy(s)) {
      throw new CicadaError(
        "E_USAGE",
        `--strategies: unknown strategy '${s}'; known: ${STRATEGIES.join(", ")}`,
      );
    }
    return s;
  });
}

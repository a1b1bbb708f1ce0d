// A small typed reader of untrusted JSON for the manifest validator: each accessor checks one field and
// throws a coded error that names the file, the field's path and what was expected versus found. Strings
// are bounded in length and arrays in count before they are walked.
import { CicadaError, type ErrorCode } from "../errors.js";

/** What a dimension may be in {@link Check.oneOf}. */
type Kind = "size" | "string" | "null";

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === "string") return `"${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`;
  if (typeof value === "number" || typeof value === "boolean") return `${typeof value} ${value}`;
  return typeof value === "object" ? "an object" : typeof value;
}

/** One field of untrusted JSON, with its path for error messages. */
export class Check {
  constructor(
    readonly value: unknown,
    private readonly source: string,
    private readonly path: string,
    private readonly maxString: number,
  ) {}

  /** Throws a coded error naming this field. */
  fail(message: string, code: ErrorCode = "E_BUNDLE_MANIFEST"): never {
    throw new CicadaError(code, `${this.source}: field '${this.path || "(root)"}' ${message}`);
  }

  private expected(what: string): never {
    return this.fail(`must be ${what}, found ${describe(this.value)}`);
  }

  /** The member `key` of this object. */
  get(key: string): Check {
    const v = this.value;
    if (typeof v !== "object" || v === null || Array.isArray(v)) this.expected("an object");
    const member = Object.prototype.hasOwnProperty.call(v, key)
      ? (v as Record<string, unknown>)[key]
      : undefined;
    return new Check(member, this.source, this.path ? `${this.path}.${key}` : key, this.maxString);
  }

  /** A string of at least `min` characters, bounded in length. */
  string(min = 1): string {
    const v = this.value;
    if (typeof v !== "string") this.expected("a string");
    if (v.length < min) this.fail(`must not be empty`);
    if (v.length > this.maxString)
      this.fail(`has ${v.length} characters, more than ${this.maxString}`, "E_BUNDLE_LIMIT");
    return v;
  }

  /** A string matching `pattern` (described as `what` in errors). */
  matching(pattern: RegExp, what: string): string {
    const v = this.string();
    if (!pattern.test(v)) this.fail(`must be ${what}, found ${describe(v)}`);
    return v;
  }

  /** Exactly `expected`. */
  literal<T extends string>(expected: T): T {
    if (this.value !== expected) this.expected(`"${expected}"`);
    return expected;
  }

  /** One of `options`. */
  enumOf<T extends string>(options: readonly T[]): T {
    if (!options.includes(this.value as T)) this.expected(`one of ${options.join(", ")}`);
    return this.value as T;
  }

  /** A safe integer. */
  integer(): number {
    if (!Number.isSafeInteger(this.value)) this.expected("an integer");
    return this.value as number;
  }

  /** A non-negative safe integer (a size, count, offset or length). */
  size(): number {
    const v = this.integer();
    if (v < 0) this.expected("a non-negative integer");
    return v;
  }

  /** A finite number. */
  finite(): number {
    if (typeof this.value !== "number" || !Number.isFinite(this.value)) this.expected("a finite number");
    return this.value;
  }

  /** null, or what `read` makes of the value. */
  nullable<T>(read: (c: Check) => T): T | null {
    return this.value === null ? null : read(this);
  }

  /** A value of one of the kinds: a size, a string, null. */
  oneOf<T>(kinds: Kind[]): T {
    const v = this.value;
    if (v === null && kinds.includes("null")) return v as T;
    if (typeof v === "string" && kinds.includes("string")) return this.string() as T;
    if (typeof v === "number" && kinds.includes("size")) return this.size() as T;
    return this.expected(kinds.join(" or "));
  }

  /** An array of at least `min` and at most `max` items, each read with `read`. */
  array<T>(max: number, read: (c: Check) => T, min = 0): T[] {
    const v = this.value;
    if (!Array.isArray(v)) this.expected("an array");
    if (v.length > max) this.fail(`has ${v.length} items, more than the ${max} allowed`, "E_BUNDLE_LIMIT");
    if (v.length < min) this.fail(`has ${v.length} items, expected at least ${min}`);
    return v.map((item, i) => read(new Check(item, this.source, `${this.path}.${i}`, this.maxString)));
  }

  /** An object of at most `max` members, each value read with `read`. */
  record<T>(max: number, read: (c: Check) => T): Record<string, T> {
    const v = this.value;
    if (typeof v !== "object" || v === null || Array.isArray(v)) this.expected("an object");
    const keys = Object.keys(v);
    if (keys.length > max)
      this.fail(`has ${keys.length} members, more than the ${max} allowed`, "E_BUNDLE_LIMIT");
    // fromEntries defines own properties, so a key such as `__proto__` stays a plain key.
    return Object.fromEntries(
      keys.map((k) => {
        if (k.length > this.maxString) this.fail(`has a key of ${k.length} characters`, "E_BUNDLE_LIMIT");
        return [k, read(this.get(k))];
      }),
    );
  }
}

/** The root of a JSON document read from `source`. */
export function field(json: unknown, source: string, maxString: number): Check {
  return new Check(json, source, "", maxString);
}

/**
 * The `envSchema` of latchkey.json: which environment variables a project expects, and what their values
 * must look like.
 *
 * ```json
 * { "envSchema": { "API_URL": { "required": true, "format": "url" },
 *                  "PORT": { "format": "port", "default": "8080" },
 *                  "API_TOKEN": { "required": true, "pattern": "tok_[A-Za-z0-9]{32}", "secret": true } } }
 * ```
 *
 * The format is declared once, as the zod/mini schema `envSchemaSchema` (schemas/env-schema.ts), and its types
 * are inferred from it; {@link parseEnvSchema} is its zod-free reader for the hot path (`run` may not load zod),
 * checked against it by a property test (schemas/env-schema.test.ts). Both use the rules exported here.
 *
 * Rules of the game:
 * - The schema is checked strictly and loudly ({@link parseEnvSchema}): an unknown property is an error, not a
 *   warning, because a typo such as `"requird": true` would otherwise silently switch a check off.
 * - A variable named `__proto__` is refused, for the same reason: many JSON readers (zod's records, plain
 *   assignment) drop such a member or turn it into a prototype, so its rule would silently not apply.
 * - A value that is absent or the empty string counts as not set: the default fills it, `required` reports it
 *   as missing, and format and pattern are not applied to it. (`KEY=` in a template .env is the usual way a
 *   required variable ends up "set" to nothing.)
 * - `required` together with `default` is allowed: the default always satisfies the requirement.
 * - `pattern` is a JavaScript regular expression compiled with the `u` flag and matched against the whole
 *   value, as if written `^(?:pattern)$`.
 * - Values are secrets: no message or error built here ever contains one — not the value being checked and
 *   not a default. Messages name the variable and the rule; for variables not marked `secret` they may give
 *   the value's length.
 */
import { isUuid } from "./uuid.js";
import { fromBase64 } from "./bytes.js";
import { isEnvVariableName } from "./dotenv.js";
import { LatchkeyError } from "./errors.js";
import { isTable } from "./schemas/rules.js";
// Types only, which the build erases: the hot path that imports this module must not load zod.
import type { EnvRule, EnvSchema } from "./schemas/env-schema.js";

/** The value formats an `envSchema` rule can require, in the order the docs list them. */
export const ENV_FORMATS = [
  "url",
  "email",
  "int",
  "port",
  "bool",
  "json",
  "uuid",
  "base64",
  "hostname",
] as const;

/** One of {@link ENV_FORMATS}. */
export type EnvFormat = (typeof ENV_FORMATS)[number];

/** One way a variable fails its rule. `message` names the variable and the expectation, never the value. */
export interface Violation {
  readonly key: string;
  readonly kind: "missing" | "format" | "pattern";
  readonly message: string;
}

/** Options for {@link checkEnv}. */
export interface CheckEnvOptions {
  /** Put defaults into the returned values (default true). Violations are the same either way. */
  readonly applyDefaults?: boolean;
}

/** What {@link checkEnv} found. */
export interface CheckEnvResult {
  /** Every violation, in schema order; empty when the values satisfy the schema. */
  readonly violations: Violation[];
  /** A copy of the input's string values, plus defaults for unset variables when `applyDefaults` is on. */
  readonly values: Record<string, string>;
}

/** How a value in one format is recognized and described. */
export interface FormatSpec {
  /** Completes "expected …" in messages. */
  readonly expected: string;
  readonly test: (value: string) => boolean;
}

const RULE_PROPERTIES = ["required", "format", "pattern", "default", "secret", "description"] as const;

const URL_PREFIX = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;
// RFC 5322 atext: the characters a dot-atom local part may use.
const EMAIL_LOCAL = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
const HOST_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
// No leading zeros and no "+" or "-0": one spelling per number, and no "010" that some readers take as octal.
const INT = /^(?:0|-?[1-9][0-9]*)$/;
const PORT = /^(?:0|[1-9][0-9]{0,4})$/;
const BOOL = /^(?:true|false|yes|no|1|0)$/i;

function hasControlOrSpace(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code <= 0x20 || code === 0x7f) return true;
  }
  return false;
}

function isUrl(value: string): boolean {
  // The WHATWG parser silently strips tabs and newlines and trims spaces and controls, so it would accept a
  // value that is not what the program will actually receive; reject those before parsing.
  return URL_PREFIX.test(value) && !hasControlOrSpace(value) && URL.canParse(value);
}

function isHostname(value: string): boolean {
  if (value.length === 0 || value.length > 253) return false;
  return value.split(".").every((label) => HOST_LABEL.test(label));
}

function isEmail(value: string): boolean {
  if (value.length > 254) return false;
  const at = value.lastIndexOf("@");
  if (at < 1) return false;
  const local = value.slice(0, at);
  return local.length <= 64 && EMAIL_LOCAL.test(local) && isHostname(value.slice(at + 1));
}

function isJson(value: string): boolean {
  try {
    JSON.parse(value);
    return true;
  } catch {
    return false;
  }
}

function isBase64(value: string): boolean {
  try {
    fromBase64(value);
    return true;
  } catch {
    return false;
  }
}

/** Each format's test ({@link matchesFormat} gives the exact rules) and the wording of its messages. */
export const FORMATS: Readonly<Record<EnvFormat, FormatSpec>> = {
  url: {
    expected: "an absolute URL written scheme://…, such as https://example.com/path",
    test: isUrl,
  },
  email: {
    expected: "an email address such as name@example.com",
    test: isEmail,
  },
  int: {
    expected: `a whole number in decimal without leading zeros or "+", between -${Number.MAX_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER}`,
    test: (value) => INT.test(value) && Number.isSafeInteger(Number(value)),
  },
  port: {
    expected: "a port number from 0 to 65535 without leading zeros",
    test: (value) => PORT.test(value) && Number(value) <= 65535,
  },
  bool: {
    expected: "one of true, false, yes, no, 1, 0 (any letter case)",
    test: (value) => BOOL.test(value),
  },
  json: {
    expected: "valid JSON",
    test: isJson,
  },
  uuid: {
    expected: "a UUID such as 123e4567-e89b-12d3-a456-426614174000",
    test: isUuid,
  },
  base64: {
    expected: "canonical standard base64 (A-Z a-z 0-9 + /, padded with =)",
    test: isBase64,
  },
  hostname: {
    expected: "a hostname such as api.example.com (letters, digits and hyphens in dot-separated labels)",
    test: isHostname,
  },
};

function isEnvFormat(value: string): value is EnvFormat {
  return (ENV_FORMATS as readonly string[]).includes(value);
}

/**
 * True when `value` is in `format`. The exact rules:
 * - `url`: starts `scheme://` (scheme = a letter, then letters, digits, `+`, `.`, `-`), contains no ASCII
 *   whitespace or control character, and the WHATWG `URL` parser accepts it. So `mailto:a@b` and
 *   `http:/x` are rejected; `http://` is rejected (no host), while `foo://` and `file:///tmp` pass.
 * - `email`: `local@domain`, at most 254 characters. The local part is an RFC 5322 dot-atom of at most 64
 *   characters (letters, digits and ``!#$%&'*+/=?^_`{|}~-``, dots only between them); the domain is a
 *   `hostname`, so `name@localhost` passes. No quoted local parts, IP literals or non-ASCII: not RFC 5322.
 * - `int`: `0` or an optional `-` then a digit 1–9 and more digits, within ±(2^53 − 1). No `+`, no
 *   leading zeros, no `-0`, no spaces, no exponent.
 * - `port`: `0` to `65535` in decimal, no sign, no leading zeros. `0` is allowed ("any free port" when
 *   listening); add `"pattern": "[1-9][0-9]*"` to exclude it.
 * - `bool`: `true`, `false`, `yes`, `no`, `1` or `0`, in any letter case.
 * - `json`: `JSON.parse` succeeds; any JSON value, surrounding JSON whitespace allowed.
 * - `uuid`: the RFC 9562 textual form, 8-4-4-4-12 hex digits, any case, any version or variant (the nil
 *   and max UUIDs pass); no braces, no `urn:uuid:` prefix.
 * - `base64`: canonical standard base64 (RFC 4648 §4): length a multiple of 4, exactly the padding needed,
 *   zero unused bits, no whitespace. The URL-safe alphabet (`-`, `_`) is rejected: use a `pattern` instead.
 *   The empty string is valid base64 (of no bytes).
 * - `hostname`: RFC 1123 — dot-separated labels of 1–63 letters, digits and hyphens, not starting or ending
 *   with a hyphen, 253 characters at most. No trailing dot (TLS and Host headers treat `a.com.` differently
 *   from `a.com`), no underscores, no IPv6 literals; all-numeric labels are allowed, so `127.0.0.1` passes.
 *
 * Throws `LK_ENV_SCHEMA_INVALID` for a format name not in {@link ENV_FORMATS} (possible from plain JavaScript).
 */
export function matchesFormat(format: EnvFormat, value: string): boolean {
  const spec = formatSpec(format);
  return spec.test(value);
}

function formatSpec(format: string): FormatSpec {
  if (!isEnvFormat(format)) {
    throw new LatchkeyError("LK_ENV_SCHEMA_INVALID", {
      message: `Unknown envSchema format ${JSON.stringify(format)}; expected one of ${ENV_FORMATS.join(", ")}.`,
    });
  }
  return FORMATS[format];
}

/** Compiles a rule's pattern anchored to the whole value, or says why it is not a valid `u`-flag RegExp. */
export function compilePattern(pattern: string): { regexp: RegExp } | { error: string } {
  try {
    // Compiled alone first: a pattern such as "a)|(b" would otherwise escape the anchoring group.
    new RegExp(pattern, "u");
    return { regexp: new RegExp(`^(?:${pattern})$`, "u") };
  } catch (cause) {
    return { error: cause instanceof Error ? cause.message : String(cause) };
  }
}

function anchoredPattern(pattern: string): RegExp {
  const compiled = compilePattern(pattern);
  if ("error" in compiled) {
    throw new LatchkeyError("LK_ENV_SCHEMA_INVALID", {
      message: `An envSchema pattern is not a valid regular expression: ${compiled.error}.`,
    });
  }
  return compiled.regexp;
}

function isUnset(value: string | undefined): value is undefined | "" {
  return value === undefined || value === "";
}

/** Detail about a failing value that helps without revealing it. */
function valueNote(rule: EnvRule, value: string): string {
  const notes: string[] = [];
  if (value.trim() !== value) notes.push("it has leading or trailing whitespace");
  if (rule.secret !== true)
    notes.push(`it is ${value.length} character${value.length === 1 ? "" : "s"} long`);
  return notes.length === 0 ? "" : ` (the value is not shown; ${notes.join(", ")})`;
}

/** Every violation of `rule` by one variable's value; the per-key step of {@link checkEnv}. */
function ruleViolations(key: string, rule: EnvRule, value: string | undefined): Violation[] {
  const effective = isUnset(value) ? rule.default : value;
  if (isUnset(effective)) {
    if (rule.required !== true) return [];
    const about = rule.description === undefined ? "" : ` (${rule.description})`;
    const expected = rule.format === undefined ? "" : `; expected ${FORMATS[rule.format].expected}`;
    return [{ key, kind: "missing", message: `${key}${about} is required but not set${expected}.` }];
  }
  const violations: Violation[] = [];
  if (rule.format !== undefined) {
    const spec = formatSpec(rule.format);
    if (!spec.test(effective)) {
      violations.push({
        key,
        kind: "format",
        message: `${key} is not a valid ${rule.format}: expected ${spec.expected}${valueNote(rule, effective)}.`,
      });
    }
  }
  if (rule.pattern !== undefined && !anchoredPattern(rule.pattern).test(effective)) {
    violations.push({
      key,
      kind: "pattern",
      message: `${key} does not match its pattern ${JSON.stringify(rule.pattern)}, which must match the whole value${valueNote(rule, effective)}.`,
    });
  }
  return violations;
}

/**
 * Checks one variable's value against its rule and returns the first violation, or `null`. `value` is
 * `undefined` (or `""`) when the variable is not set: then the rule's default, if any, is checked instead,
 * and a required variable without one is `missing`. Otherwise the format is checked before the pattern.
 * Throws `LK_ENV_SCHEMA_INVALID` only for a rule {@link parseEnvSchema} would have rejected.
 */
export function validateValue(key: string, rule: EnvRule, value: string | undefined): Violation | null {
  return ruleViolations(key, rule, value)[0] ?? null;
}

function setOwn(target: Record<string, string>, key: string, value: string): void {
  // defineProperty, because plain assignment to "__proto__" would replace the prototype instead.
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * Checks a set of variables against a schema and reports every violation at once, in schema order (a
 * variable can fail both its format and its pattern). Variables the schema does not mention are allowed
 * and copied through. An absent, `undefined` or empty value counts as not set: its default applies, and if
 * there is none a required variable is `missing`. `values` may be `process.env` as it is.
 *
 * With `applyDefaults: false` the returned values are only the input's, but the violations are the same:
 * a default still satisfies `required`, because it will when the program runs.
 */
export function checkEnv(
  schema: EnvSchema,
  values: Readonly<Record<string, string | undefined>>,
  options: CheckEnvOptions = {},
): CheckEnvResult {
  const applyDefaults = options.applyDefaults ?? true;
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(values)) {
    if (typeof value === "string") setOwn(out, key, value);
  }
  const violations: Violation[] = [];
  for (const [key, rule] of Object.entries(schema)) {
    const value = Object.hasOwn(values, key) ? values[key] : undefined;
    if (applyDefaults && isUnset(value) && rule.default !== undefined) setOwn(out, key, rule.default);
    violations.push(...ruleViolations(key, rule, value));
  }
  return { violations, values: out };
}

/**
 * {@link checkEnv} for callers that stop on failure: returns the values with defaults applied, or throws
 * `LK_ENV_CHECK_FAILED` listing every violation (in the message and as `details.violations`).
 */
export function assertEnv(
  schema: EnvSchema,
  values: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  const result = checkEnv(schema, values);
  if (result.violations.length === 0) return result.values;
  const count = result.violations.length;
  throw new LatchkeyError("LK_ENV_CHECK_FAILED", {
    message: `${count} environment variable problem${count === 1 ? "" : "s"}: ${result.violations.map((v) => v.message).join(" ")}`,
    details: { violations: result.violations.map((v) => ({ ...v })) },
  });
}

/** True when the schema marks `key` as a secret (`"secret": true`). */
export function isSecretKey(schema: EnvSchema, key: string): boolean {
  return Object.hasOwn(schema, key) && schema[key]?.secret === true;
}

/** A key as it may appear in a message: as is when valid, otherwise quoted and cut short. */
function displayKey(key: string): string {
  if (isEnvVariableName(key) && key.length <= 100) return key;
  const quoted = JSON.stringify(key);
  return quoted.length <= 60 ? quoted : `${quoted.slice(0, 57)}…"`;
}

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

function parseRule(key: string, raw: unknown, problems: string[]): EnvRule | undefined {
  const at = `envSchema.${key}`;
  if (!isTable(raw)) {
    problems.push(`${at} must be an object of rule properties, not ${describeType(raw)}`);
    return undefined;
  }
  const before = problems.length;
  const rule: {
    -readonly [P in keyof EnvRule]: EnvRule[P];
  } = {};
  for (const [property, value] of Object.entries(raw)) {
    const where = `${at}.${displayKey(property)}`;
    switch (property) {
      case "required":
      case "secret":
        if (typeof value === "boolean") rule[property] = value;
        else problems.push(`${where} must be true or false, not ${describeType(value)}`);
        break;
      case "description":
        if (typeof value === "string") rule.description = value;
        else problems.push(`${where} must be a string, not ${describeType(value)}`);
        break;
      case "format":
        if (typeof value !== "string") problems.push(`${where} must be a string, not ${describeType(value)}`);
        else if (!isEnvFormat(value)) {
          problems.push(
            `${where} ${JSON.stringify(value.slice(0, 40))} is not a known format (${ENV_FORMATS.join(", ")})`,
          );
        } else rule.format = value;
        break;
      case "pattern":
        if (typeof value !== "string") problems.push(`${where} must be a string, not ${describeType(value)}`);
        else if (value === "") problems.push(`${where} is empty; remove it or write a pattern`);
        else {
          const compiled = compilePattern(value);
          if ("error" in compiled) {
            problems.push(`${where} is not a valid regular expression with the u flag: ${compiled.error}`);
          } else rule.pattern = value;
        }
        break;
      case "default":
        // Never quote the default: a schema is committed to git, but it may still hold a real credential.
        if (typeof value === "number" || typeof value === "boolean") {
          problems.push(`${where} must be a string (environment values are text): put it in quotes`);
        } else if (typeof value !== "string") {
          problems.push(`${where} must be a string, not ${describeType(value)}`);
        } else if (value === "") problems.push(`${where} is empty, which means unset; remove it`);
        else rule.default = value;
        break;
      default:
        problems.push(
          `${at} has unknown property ${displayKey(property)} (allowed: ${RULE_PROPERTIES.join(", ")})`,
        );
    }
  }
  if (problems.length > before) return undefined;
  if (rule.default !== undefined) {
    if (rule.format !== undefined && !FORMATS[rule.format].test(rule.default)) {
      problems.push(`${at}.default is not a valid ${rule.format}: expected ${FORMATS[rule.format].expected}`);
    }
    if (rule.pattern !== undefined && !anchoredPattern(rule.pattern).test(rule.default)) {
      problems.push(`${at}.default does not match the pattern, which must match the whole value`);
    }
    if (problems.length > before) return undefined;
  }
  return Object.freeze(rule);
}

/**
 * Why a variable named `__proto__` is refused (parseEnvSchema and envSchemaSchema both say it): zod's records
 * drop such a member, and plain assignment turns it into a prototype, so its rule would silently not apply.
 */
export const PROTO_KEY_PROBLEM =
  "envSchema may not have a variable named __proto__: JSON readers drop or misread a member of that name, so its rule could silently not apply";

/**
 * Validates the `envSchema` value of latchkey.json and returns it as a frozen, null-prototype
 * {@link EnvSchema}: the hot-path reader of core's `envSchemaSchema` (schemas/env-schema.ts), written without
 * zod for `run`'s start-up. It accepts exactly what that schema accepts and reads it to an equal value, which a
 * property test checks (schemas/env-schema.test.ts); its messages are its own, and more precise.
 * `undefined` (no `envSchema` at all) gives an empty schema. Fails loudly, collecting
 * every problem before throwing one `LK_ENV_SCHEMA_INVALID` whose message names each variable and
 * property at fault (`details.problems` lists them), when:
 * - the schema or a rule is not a JSON object;
 * - a variable name does not match `[A-Za-z_][A-Za-z0-9_]*`, or is `__proto__`;
 * - a rule has a property other than required, format, pattern, default, secret, description, or one of
 *   the wrong type (`default` must be a string: `"8080"`, not `8080`);
 * - `format` is not one of {@link ENV_FORMATS};
 * - `pattern` is empty or does not compile as a JavaScript RegExp with the `u` flag;
 * - `default` is empty, or does not satisfy the rule's own format and pattern.
 * `source` names the file in messages (default `latchkey.json`).
 */
export function parseEnvSchema(value: unknown, source = "latchkey.json"): EnvSchema {
  const schema = Object.create(null) as Record<string, EnvRule>;
  const problems: string[] = [];
  if (value !== undefined && !isTable(value)) {
    problems.push(`envSchema must be an object mapping variable names to rules, not ${describeType(value)}`);
  } else if (value !== undefined) {
    for (const [key, raw] of Object.entries(value)) {
      if (key === "__proto__") {
        problems.push(PROTO_KEY_PROBLEM);
        continue;
      }
      if (!isEnvVariableName(key)) {
        problems.push(
          `envSchema key ${displayKey(key)} is not a valid variable name (letters, digits and _, not starting with a digit)`,
        );
        continue;
      }
      const rule = parseRule(key, raw, problems);
      if (rule !== undefined) schema[key] = rule;
    }
  }
  if (problems.length > 0) {
    const summary =
      problems.length === 1
        ? problems[0]!
        : `${problems.length} problems in envSchema: ${problems.join("; ")}`;
    throw new LatchkeyError("LK_ENV_SCHEMA_INVALID", {
      message: `${source}: ${summary}.`,
      details: { source, problems },
    });
  }
  return Object.freeze(schema);
}

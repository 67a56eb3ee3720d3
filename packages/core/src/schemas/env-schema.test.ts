// envSchemaSchema against its zod-free reader parseEnvSchema (env-schema.ts), as fast-readers.test.ts holds the
// CLI's other readers to their schemas: on generated values around the format (valid rules, each property wrong
// in the ways a hand edit gets it wrong, unknown properties, bad names, `__proto__` as a name and as a property,
// patterns that do not compile, defaults that break their own rule, values of every JSON type) the reader must
// accept exactly what the schema accepts, and read it to an equal value. And the shape the server takes must be
// the same structure, without the checks that run a pattern.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ENV_FORMATS, parseEnvSchema } from "../env-schema.js";
import { isLatchkeyError } from "../errors.js";
import { envSchemaSchema, envSchemaShapeSchema, type EnvSchema } from "./env-schema.js";
import { checkSchema } from "./parse.js";
import { expectReaderAgrees } from "../../test/support/reader-parity.js";

/** Any JSON value, small, and the values a hand edit most often puts in the wrong place. */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(null, true, false, 0, 1, -1, 1.5, 8080, "", "x", [], {}, ["url"]),
);

/** An object with these members, made as JSON.parse makes one: `__proto__` is then an own member like any other. */
function object(entries: readonly (readonly [string, unknown])[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of entries) {
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** A rule's format, pattern and default as people write them: each alone, or a default that fits its rule. */
const coherent: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.constantFrom(
    {},
    { format: "port", default: "8080" },
    { format: "url", default: "https://example.com/path" },
    { format: "email", default: "name@example.com" },
    { format: "int", default: "-12" },
    { format: "bool", default: "yes" },
    { format: "json", default: "{}" },
    { format: "uuid", default: "123e4567-e89b-12d3-a456-426614174000" },
    { format: "base64", default: "AAAA" },
    { format: "hostname", default: "api.example.com" },
    { pattern: "[a-z]+", default: "abc" },
    { pattern: "tok_[A-Za-z0-9]{4}", default: "tok_abcd" },
    { pattern: "\\p{L}+", default: "ßé" },
    { format: "int", pattern: "[1-9][0-9]*", default: "12" },
  ),
  fc.record({ format: fc.constantFrom(...ENV_FORMATS) }),
  fc.record({ pattern: fc.constantFrom("[a-z]+", "[0-9]{1,5}", ".*", "a|b", "https://.+", "(a+)+") }),
  fc.record({ default: fc.string({ minLength: 1, maxLength: 6 }) }),
);

/** A valid rule. */
const validRule: fc.Arbitrary<Record<string, unknown>> = fc
  .tuple(
    coherent,
    fc.record(
      {
        required: fc.boolean(),
        secret: fc.boolean(),
        description: fc.oneof(fc.constantFrom("", "Base URL of the API"), fc.string({ maxLength: 6 })),
      },
      { requiredKeys: [] },
    ),
  )
  .map(([expressions, flags]) => ({ ...flags, ...expressions }));

/** One property of a rule set wrong, in the ways hand edits get them wrong, or one that rules do not have. */
const fault: fc.Arbitrary<readonly [string, unknown]> = fc.oneof(
  fc.tuple(fc.constantFrom("required", "secret"), fc.constantFrom("true", "yes", 1, 0, null, [])),
  fc.tuple(fc.constant("format"), fc.constantFrom("URL", "ipv4", "", " port", "integer", 5, ["url"])),
  // Empty; not compiling at all; compiling only without the u flag; escaping the anchoring group; not text.
  fc.tuple(
    fc.constant("pattern"),
    fc.constantFrom("", "(", "[", "*", "\\-\\q", "a{", "a)|(b", "\\p{Nope}", 5, null),
  ),
  // Not text, empty, or (with the rule's format or pattern) a default that breaks it.
  fc.tuple(
    fc.constant("default"),
    fc.constantFrom("", 8080, true, null, ["x"], "80a", " 8080", "http://", "A1"),
  ),
  fc.tuple(fc.constant("description"), fc.constantFrom(5, null, false, {})),
  fc.tuple(
    fc.constantFrom("requird", "Required", "type", "defaults", "__proto__", "constructor"),
    fc.oneof(fc.constantFrom(true, "x"), anyValue),
  ),
);

/** Mostly valid rules, one fault in some, anything at all in place of a rule now and then. */
const rule: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: validRule.map((valid) => object(Object.entries(valid))) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(validRule, fault)
      .map(([valid, [property, value]]) => object([...Object.entries(valid), [property, value]])),
  },
  { weight: 1, arbitrary: anyValue },
);

const variableName = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom("API_URL", "PORT", "_X", "a1", "toString", "constructor") },
  { weight: 5, arbitrary: fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/) },
  { weight: 2, arbitrary: fc.constantFrom("1X", "API-URL", "", "X Y", "Ä", "A\nB", "__proto__") },
);

/** An envSchema: variable names to rules, and now and then anything else in its place. */
const envSchemas: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc
      .uniqueArray(fc.tuple(variableName, rule), { maxLength: 3, selector: ([key]) => key })
      .map((entries) => object(entries)),
  },
  { weight: 1, arbitrary: anyValue },
);

/** parseEnvSchema as a reader: the schema it reads, or that it refused (loudly, with its own error). */
function read(value: unknown): { ok: true; value: EnvSchema } | { ok: false } {
  try {
    return { ok: true, value: parseEnvSchema(value) };
  } catch (error) {
    if (isLatchkeyError(error) && error.code === "LK_ENV_SCHEMA_INVALID") return { ok: false };
    throw error;
  }
}

describe("envSchemaSchema and parseEnvSchema", () => {
  it("accept exactly the same envSchemas and read them alike", () => {
    expectReaderAgrees(envSchemaSchema, read, envSchemas, { runs: 5000, atLeast: 500 });
  });

  it("refuse a variable named __proto__, which a zod record alone would drop without a word", () => {
    const value: unknown = JSON.parse('{"__proto__": {"required": true}, "B": {}}');
    expect(read(value).ok).toBe(false);
    expect(checkSchema(envSchemaSchema, value)).toEqual({
      ok: false,
      path: [],
      message: expect.stringMatching(/^envSchema may not have a variable named __proto__/) as string,
    });
    expect(checkSchema(envSchemaShapeSchema, value).ok).toBe(false);
  });
});

describe("envSchemaShapeSchema", () => {
  it("is envSchemaSchema's structure: it accepts all that accepts, and refuses the same structural faults", () => {
    let onlyExpressions = 0;
    fc.assert(
      fc.property(envSchemas, (value) => {
        const whole = checkSchema(envSchemaSchema, value);
        const shape = checkSchema(envSchemaShapeSchema, value);
        if (whole.ok) expect(shape).toEqual(whole);
        // Only the checks that run a pattern or a format test may refuse what the shape accepts.
        if (shape.ok && !whole.ok) {
          expect(whole.path.at(-1)).toMatch(/^(pattern|default)$/);
          onlyExpressions++;
        }
      }),
      { numRuns: 3000 },
    );
    expect(onlyExpressions).toBeGreaterThan(30);
  });

  it("runs no pattern and no format test", () => {
    // Neither compiles the pattern nor tests the default against it or against the format.
    const schema = {
      A: { pattern: "(" },
      B: { pattern: "[0-9]+", default: "x" },
      C: { format: "port", default: "x" },
    };
    expect(checkSchema(envSchemaShapeSchema, schema)).toEqual({ ok: true, value: schema });
    expect(checkSchema(envSchemaSchema, schema).ok).toBe(false);
  });

  it("names no key nor value sent in its messages, since the server answers with them", () => {
    const secret = "s3-cr3t";
    for (const value of [
      { [secret]: {} },
      { A: { [secret]: true } },
      { A: { required: secret } },
      { A: { format: secret } },
      { A: { default: 8080, description: secret } },
    ]) {
      const checked = checkSchema(envSchemaShapeSchema, value);
      expect(checked.ok).toBe(false);
      if (!checked.ok) expect(checked.message).not.toContain(secret);
    }
  });
});

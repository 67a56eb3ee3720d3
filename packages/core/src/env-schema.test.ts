import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ENV_FORMATS,
  assertEnv,
  checkEnv,
  isSecretKey,
  matchesFormat,
  parseEnvSchema,
  validateValue,
  type EnvFormat,
} from "./env-schema.js";
import type { EnvRule } from "./schemas/env-schema.js";
import { ExitCode, LatchkeyError, isLatchkeyError } from "./errors.js";

/** The LatchkeyError `fn` throws; fails the test when it returns instead. */
function thrown(fn: () => unknown): LatchkeyError {
  try {
    fn();
  } catch (error) {
    if (error instanceof LatchkeyError) return error;
    throw error;
  }
  throw new Error("expected a LatchkeyError");
}

const cases: Record<EnvFormat, { valid: string[]; invalid: string[] }> = {
  url: {
    valid: [
      "https://example.com",
      "https://example.com/path?q=1#frag",
      "http://localhost:8080",
      "postgres://user:pass@db.internal:5432/app",
      "redis://127.0.0.1",
      "http://[::1]:3000/",
      "file:///tmp/socket",
      "foo://",
      "HTTPS://EXAMPLE.COM",
      "https://bücher.example/ä",
    ],
    invalid: [
      "",
      "example.com",
      "/relative/path",
      "//example.com",
      "mailto:a@example.com",
      "http:/example.com",
      "http://",
      "https://exa mple.com",
      " https://example.com",
      "https://example.com ",
      "https://example.com\n",
      "https://exam\tple.com",
      "https://example.com/\u007f",
      "1http://example.com",
      "http://example.com:99999",
      "http://[::1",
    ],
  },
  email: {
    valid: [
      "name@example.com",
      "first.last+tag@sub.example.co.uk",
      "user@localhost",
      "o'brien@example.com",
      "x@a.b",
      "!#$%&'*+/=?^_`{|}~-@example.com",
      `${"a".repeat(64)}@example.com`,
    ],
    invalid: [
      "",
      "plain",
      "@example.com",
      "name@",
      "a@b@example.com",
      "name @example.com",
      "name@exa mple.com",
      ".name@example.com",
      "name.@example.com",
      "na..me@example.com",
      "name@-example.com",
      "name@example.com.",
      "name@example..com",
      '"quoted"@example.com',
      "name@[127.0.0.1]",
      "jörg@example.com",
      `${"a".repeat(65)}@example.com`,
      `a@${"b".repeat(62)}.${"c".repeat(62)}.${"d".repeat(62)}.${"e".repeat(62)}.com`,
    ],
  },
  int: {
    valid: ["0", "7", "-7", "42", "1000000", "9007199254740991", "-9007199254740991"],
    invalid: [
      "",
      "+1",
      "-0",
      "007",
      "00",
      "-01",
      "1.0",
      "1e3",
      " 1",
      "1 ",
      "0x10",
      "1_000",
      "١٢",
      "9007199254740992",
      "-9007199254740992",
      "99999999999999999999999",
      "-",
      "Infinity",
      "NaN",
    ],
  },
  port: {
    valid: ["0", "1", "80", "443", "8080", "65535"],
    invalid: ["", "65536", "99999", "100000", "-1", "+80", "080", "00", "80.0", " 80", "http", "1e3"],
  },
  bool: {
    valid: ["true", "false", "TRUE", "False", "yes", "No", "YES", "1", "0"],
    invalid: ["", "t", "f", "y", "n", "on", "off", "2", "01", " true", "true ", "truee", "yes!"],
  },
  json: {
    valid: ["{}", "[]", '{"a":[1,2,{"b":null}]}', "1", "-1.5e3", '"text"', "null", "true", " {} "],
    invalid: ["", "{", "{'a':1}", "{a:1}", "[1,]", "undefined", "NaN", '"unterminated', "{}{}"],
  },
  uuid: {
    valid: [
      "123e4567-e89b-12d3-a456-426614174000",
      "123E4567-E89B-12D3-A456-426614174000",
      "00000000-0000-0000-0000-000000000000",
      "ffffffff-ffff-ffff-ffff-ffffffffffff",
      "017f22e2-79b0-7cc3-98c4-dc0c0c07398f",
    ],
    invalid: [
      "",
      "123e4567e89b12d3a456426614174000",
      "{123e4567-e89b-12d3-a456-426614174000}",
      "urn:uuid:123e4567-e89b-12d3-a456-426614174000",
      "123e4567-e89b-12d3-a456-42661417400",
      "123e4567-e89b-12d3-a456-4266141740000",
      "123e4567-e89b-12d3-a456-42661417400g",
      "123e4567-e89b-12d3a456-426614174000-",
      " 123e4567-e89b-12d3-a456-426614174000",
    ],
  },
  base64: {
    valid: ["", "AA==", "AAA=", "AAAA", "Zm9vYmFy", "+/+/", "SGVsbG8sIHdvcmxkIQ=="],
    invalid: [
      "A",
      "AA",
      "AA=",
      "AAA",
      "AB==",
      "AAB=",
      "A===",
      "====",
      "-_-_",
      "Zm9v\nYmFy",
      "Zm9v YmFy",
      " AAAA",
      "AA==AA==",
      "Zm9vYg",
    ],
  },
  hostname: {
    valid: [
      "localhost",
      "example.com",
      "api.example.com",
      "a",
      "xn--bcher-kva.example",
      "127.0.0.1",
      "3com.com",
      "a-b.c-d",
      "EXAMPLE.COM",
      `${"a".repeat(63)}.com`,
    ],
    invalid: [
      "",
      "example.com.",
      ".example.com",
      "exa..mple.com",
      "-example.com",
      "example-.com",
      "ex_ample.com",
      "exa mple.com",
      "bücher.example",
      "example.com:80",
      "[::1]",
      "https://example.com",
      `${"a".repeat(64)}.com`,
      [..."abcde"].map((c) => c.repeat(50)).join(".") + ".x",
    ],
  },
};

describe("formats", () => {
  it("has a test table for every format", () => {
    expect(Object.keys(cases).sort()).toEqual([...ENV_FORMATS].sort());
  });

  for (const format of ENV_FORMATS) {
    describe(format, () => {
      it.each(cases[format].valid)("accepts %j", (value) => {
        expect(matchesFormat(format, value)).toBe(true);
      });
      it.each(cases[format].invalid)("rejects %j", (value) => {
        expect(matchesFormat(format, value)).toBe(false);
      });
    });
  }

  it("checks hostname and email lengths at the exact limits", () => {
    const host253 = ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61)].join(".");
    expect(host253).toHaveLength(253);
    expect(matchesFormat("hostname", host253)).toBe(true);
    expect(matchesFormat("hostname", host253 + "d")).toBe(false);
    const email254 = `${"a".repeat(64)}@${["b".repeat(63), "c".repeat(63), "d".repeat(61)].join(".")}`;
    expect(email254).toHaveLength(254);
    expect(matchesFormat("email", email254)).toBe(true);
    expect(matchesFormat("email", email254 + "d")).toBe(false);
  });

  it("accepts every integer in the safe range and its decimal spelling only", () => {
    fc.assert(
      fc.property(fc.maxSafeInteger(), (n) => {
        expect(matchesFormat("int", String(n))).toBe(true);
        expect(matchesFormat("int", `+${Math.abs(n)}`)).toBe(false);
        expect(matchesFormat("int", `0${Math.abs(n)}`)).toBe(false);
      }),
    );
  });

  it("accepts exactly the ports 0-65535", () => {
    fc.assert(
      fc.property(fc.integer({ min: -100_000, max: 200_000 }), (n) => {
        expect(matchesFormat("port", String(n))).toBe(n >= 0 && n <= 65535);
      }),
    );
  });

  it("accepts every UUID crypto.randomUUID makes", () => {
    for (let i = 0; i < 50; i++) expect(matchesFormat("uuid", crypto.randomUUID())).toBe(true);
  });

  it("accepts JSON.stringify output for any JSON value", () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => matchesFormat("json", JSON.stringify(v))));
  });

  it("rejects an unknown format name coming from plain JavaScript", () => {
    const error = thrown(() => matchesFormat("ipv4" as EnvFormat, "1.2.3.4"));
    expect(error.code).toBe("LK_ENV_SCHEMA_INVALID");
  });
});

describe("parseEnvSchema", () => {
  it("accepts a full schema and returns a frozen, null-prototype copy", () => {
    const input = {
      API_URL: { required: true, format: "url", description: "Base URL of the API" },
      PORT: { format: "port", default: "8080" },
      API_TOKEN: { required: true, pattern: "tok_[A-Za-z0-9]{8}", secret: true },
      _private9: {},
    };
    const schema = parseEnvSchema(input);
    expect(schema).toEqual(input);
    expect(Object.getPrototypeOf(schema)).toBeNull();
    expect(Object.isFrozen(schema)).toBe(true);
    expect(Object.isFrozen(schema.PORT)).toBe(true);
    expect(Object.keys(schema)).toEqual(["API_URL", "PORT", "API_TOKEN", "_private9"]);
  });

  it("treats a missing envSchema as empty", () => {
    expect(Object.keys(parseEnvSchema(undefined))).toEqual([]);
  });

  it("refuses a variable named __proto__ loudly, and copes with a value of that name", () => {
    // JSON.parse makes an own __proto__ member; a reader that dropped it would switch its rule off silently.
    const error = thrown(() => parseEnvSchema(JSON.parse('{"__proto__": {"required": true}, "B": {}}')));
    expect(error.code).toBe("LK_ENV_SCHEMA_INVALID");
    expect(error.message).toMatch(/^latchkey\.json: envSchema may not have a variable named __proto__/);
    const { values } = checkEnv(parseEnvSchema({ B: { default: "x" } }), JSON.parse('{"__proto__": "v"}'));
    expect(Object.getPrototypeOf(values)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(values, "__proto__")?.value).toBe("v");
  });

  it("refuses __proto__ as a rule property", () => {
    expect(thrown(() => parseEnvSchema(JSON.parse('{"A": {"__proto__": {}}}'))).message).toMatch(
      /envSchema\.A has unknown property __proto__ /,
    );
  });

  it("allows required together with default", () => {
    const schema = parseEnvSchema({ LOG_LEVEL: { required: true, default: "info" } });
    expect(checkEnv(schema, {}).violations).toEqual([]);
  });

  const invalid: Array<[string, unknown, RegExp]> = [
    ["a non-object schema", [], /envSchema must be an object .* not an array/],
    ["a null schema", null, /not null/],
    ["a string schema", "API_URL", /not a string/],
    ["a name starting with a digit", { "1ST": {} }, /envSchema key "1ST" is not a valid variable name/],
    ["a name with a hyphen", { "API-URL": {} }, /envSchema key "API-URL" is not a valid variable name/],
    ["an empty name", { "": {} }, /envSchema key "" is not a valid variable name/],
    ["a name with a control character", { "A\nB": {} }, /envSchema key "A\\nB"/],
    ["a rule that is a string", { API_URL: "url" }, /envSchema\.API_URL must be an object .* not a string/],
    ["a rule that is true", { API_URL: true }, /envSchema\.API_URL must be an object .* not a boolean/],
    [
      "an unknown property",
      { API_URL: { requird: true } },
      /envSchema\.API_URL has unknown property requird/,
    ],
    ["a non-boolean required", { A: { required: "yes" } }, /envSchema\.A\.required must be true or false/],
    [
      "a non-boolean secret",
      { A: { secret: 1 } },
      /envSchema\.A\.secret must be true or false, not a number/,
    ],
    ["a non-string description", { A: { description: 5 } }, /envSchema\.A\.description must be a string/],
    [
      "an unknown format",
      { A: { format: "ipv4" } },
      /envSchema\.A\.format "ipv4" is not a known format \(url,/,
    ],
    ["a format in the wrong case", { A: { format: "URL" } }, /envSchema\.A\.format "URL" is not a known/],
    [
      "a non-string format",
      { A: { format: ["url"] } },
      /envSchema\.A\.format must be a string, not an array/,
    ],
    [
      "a pattern that does not compile",
      { A: { pattern: "(" } },
      /envSchema\.A\.pattern is not a valid regular/,
    ],
    ["a pattern invalid only under u", { A: { pattern: "\\-\\q" } }, /envSchema\.A\.pattern is not a valid/],
    ["a pattern escaping the anchors", { A: { pattern: "a)|(b" } }, /envSchema\.A\.pattern is not a valid/],
    ["an empty pattern", { A: { pattern: "" } }, /envSchema\.A\.pattern is empty/],
    ["a numeric default", { PORT: { default: 8080 } }, /envSchema\.PORT\.default must be a string .*quotes/],
    ["an object default", { A: { default: {} } }, /envSchema\.A\.default must be a string, not an object/],
    ["an empty default", { A: { default: "" } }, /envSchema\.A\.default is empty/],
    [
      "a default breaking the format",
      { PORT: { format: "port", default: "80a" } },
      /PORT\.default is not a valid port/,
    ],
    [
      "a default breaking the pattern",
      { A: { pattern: "[a-z]+", default: "abc1" } },
      /A\.default does not match/,
    ],
  ];

  it.each(invalid)("rejects %s", (_name, input, message) => {
    const error = thrown(() => parseEnvSchema(input, "proj/latchkey.json"));
    expect(error.code).toBe("LK_ENV_SCHEMA_INVALID");
    expect(error.exitCode).toBe(ExitCode.usage);
    expect(error.message).toMatch(/^proj\/latchkey\.json: /);
    expect(error.message).toMatch(message);
    expect(error.details).toMatchObject({ source: "proj/latchkey.json" });
  });

  it("reports every problem in one error, and never quotes a default", () => {
    const error = thrown(() =>
      parseEnvSchema({
        "bad-name": {},
        A: { requird: true, format: "nope" },
        B: { format: "int", default: "s3cr3t-default" },
        C: { format: "url" },
      }),
    );
    expect(error.message).toMatch(/^latchkey\.json: 4 problems in envSchema: /);
    const problems = (error.details as { problems: string[] }).problems;
    expect(problems).toHaveLength(4);
    expect(problems[0]).toMatch(/"bad-name"/);
    expect(problems[1]).toMatch(/A has unknown property requird/);
    expect(problems[2]).toMatch(/A\.format "nope"/);
    expect(problems[3]).toMatch(/B\.default is not a valid int/);
    expect(error.message).not.toContain("s3cr3t-default");
  });

  it("cuts very long invalid names short in messages", () => {
    const error = thrown(() => parseEnvSchema({ [`-${"x".repeat(500)}`]: {} }));
    expect(error.message.length).toBeLessThan(200);
  });
});

describe("validateValue", () => {
  it("returns null for a satisfied rule and for an unset optional variable", () => {
    expect(validateValue("PORT", { format: "port" }, "8080")).toBeNull();
    expect(validateValue("PORT", { format: "port" }, undefined)).toBeNull();
    expect(validateValue("PORT", { format: "port" }, "")).toBeNull();
    expect(validateValue("ANY", {}, "anything at all")).toBeNull();
  });

  it("reports a required variable that is unset or empty as missing, naming it and the format", () => {
    for (const value of [undefined, ""]) {
      const violation = validateValue(
        "API_URL",
        { required: true, format: "url", description: "The API" },
        value,
      );
      expect(violation).toEqual({
        key: "API_URL",
        kind: "missing",
        message: expect.stringMatching(
          /^API_URL \(The API\) is required but not set; expected an absolute URL/,
        ),
      });
    }
  });

  it("lets a default satisfy required and checks the default in place of an unset value", () => {
    expect(validateValue("PORT", { required: true, format: "port", default: "8080" }, undefined)).toBeNull();
    // A hand-built rule can hold a bad default; it is checked like a value.
    expect(validateValue("PORT", { format: "port", default: "x" }, "")?.kind).toBe("format");
  });

  it("names the key and the expected format", () => {
    const violation = validateValue("PORT", { format: "port" }, "eighty");
    expect(violation).toEqual({
      key: "PORT",
      kind: "format",
      message:
        "PORT is not a valid port: expected a port number from 0 to 65535 without leading zeros (the value is not shown; it is 6 characters long).",
    });
  });

  it("gives no length for a secret, and flags surrounding whitespace", () => {
    const secret = validateValue("TOKEN", { format: "uuid", secret: true }, "abcdefgh");
    expect(secret?.message).toBe(
      "TOKEN is not a valid uuid: expected a UUID such as 123e4567-e89b-12d3-a456-426614174000.",
    );
    const padded = validateValue("TOKEN", { format: "uuid", secret: true }, `${crypto.randomUUID()}\n`);
    expect(padded?.message).toMatch(/\(the value is not shown; it has leading or trailing whitespace\)\.$/);
  });

  it("checks the format before the pattern", () => {
    expect(validateValue("A", { format: "int", pattern: "[a-z]+" }, "abc")?.kind).toBe("format");
    expect(validateValue("A", { format: "int", pattern: "[1-9]" }, "12")?.kind).toBe("pattern");
  });

  it("throws LK_ENV_SCHEMA_INVALID for a hand-built rule parseEnvSchema would reject", () => {
    expect(thrown(() => validateValue("A", { pattern: "(" }, "x")).code).toBe("LK_ENV_SCHEMA_INVALID");
    expect(thrown(() => validateValue("A", { format: "nope" as EnvFormat }, "x")).code).toBe(
      "LK_ENV_SCHEMA_INVALID",
    );
  });
});

describe("pattern anchoring", () => {
  const rule = (pattern: string): EnvRule => parseEnvSchema({ A: { pattern } }).A!;

  it("matches the whole value, not a substring", () => {
    expect(validateValue("A", rule("[0-9]+"), "123")).toBeNull();
    expect(validateValue("A", rule("[0-9]+"), "abc123")?.kind).toBe("pattern");
    expect(validateValue("A", rule("[0-9]+"), "123abc")?.kind).toBe("pattern");
    expect(validateValue("A", rule("tok_"), "tok_extra")?.kind).toBe("pattern");
  });

  it("anchors every alternative, not only the first and last", () => {
    expect(validateValue("A", rule("dev|prod"), "dev")).toBeNull();
    expect(validateValue("A", rule("dev|prod"), "prod")).toBeNull();
    expect(validateValue("A", rule("dev|prod"), "devx")?.kind).toBe("pattern");
    expect(validateValue("A", rule("dev|prod"), "xprod")?.kind).toBe("pattern");
  });

  it("keeps explicit anchors harmless and does not let $ match before a final newline", () => {
    expect(validateValue("A", rule("^abc$"), "abc")).toBeNull();
    expect(validateValue("A", rule("abc"), "abc\n")?.kind).toBe("pattern");
  });

  it("compiles with the u flag, so . and classes see code points", () => {
    expect(validateValue("A", rule("."), "😀")).toBeNull();
    expect(validateValue("A", rule("\\p{Lu}+"), "ÄB")).toBeNull();
  });

  it("is case-sensitive and gives the same answer on repeated checks", () => {
    const r = rule("[a-z]+");
    for (let i = 0; i < 3; i++) {
      expect(validateValue("A", r, "abc")).toBeNull();
      expect(validateValue("A", r, "ABC")?.kind).toBe("pattern");
    }
  });

  it("names the pattern in the message", () => {
    expect(validateValue("A", rule("[0-9]+"), "abcdef")?.message).toBe(
      'A does not match its pattern "[0-9]+", which must match the whole value (the value is not shown; it is 6 characters long).',
    );
  });
});

describe("checkEnv", () => {
  const schema = parseEnvSchema({
    API_URL: { required: true, format: "url" },
    PORT: { format: "port", default: "8080" },
    LOG_LEVEL: { required: true, pattern: "debug|info|warn|error", default: "info" },
    API_TOKEN: { required: true, secret: true, pattern: "tok_[A-Za-z0-9]{8}" },
    WORKERS: { format: "int", pattern: "[1-9]" },
    DEBUG: { format: "bool" },
  });

  it("reports every violation at once, in schema order", () => {
    const { violations } = checkEnv(schema, { PORT: "http", WORKERS: "12", DEBUG: "maybe" });
    expect(violations.map((v) => [v.key, v.kind])).toEqual([
      ["API_URL", "missing"],
      ["PORT", "format"],
      ["API_TOKEN", "missing"],
      ["WORKERS", "pattern"],
      ["DEBUG", "format"],
    ]);
  });

  it("reports both the format and the pattern when a value breaks both", () => {
    const { violations } = checkEnv(schema, { API_URL: "https://x.example", API_TOKEN: "t", WORKERS: "ten" });
    expect(violations.map((v) => [v.key, v.kind])).toEqual([
      ["API_TOKEN", "pattern"],
      ["WORKERS", "format"],
      ["WORKERS", "pattern"],
    ]);
  });

  it("applies defaults to absent and empty variables and copies unknown keys through", () => {
    const input = { API_URL: "https://x.example", API_TOKEN: "tok_abcdEFGH", PORT: "", EXTRA: "kept" };
    const result = checkEnv(schema, input);
    expect(result.violations).toEqual([]);
    expect(result.values).toEqual({ ...input, PORT: "8080", LOG_LEVEL: "info" });
    expect(input.PORT).toBe("");
  });

  it("keeps set values over defaults", () => {
    const result = checkEnv(schema, { API_URL: "https://x", API_TOKEN: "tok_abcdEFGH", PORT: "3000" });
    expect(result.values.PORT).toBe("3000");
  });

  it("with applyDefaults: false returns the input only, and reports the same violations", () => {
    const input = { API_URL: "https://x.example", API_TOKEN: "tok_abcdEFGH" };
    const off = checkEnv(schema, input, { applyDefaults: false });
    expect(off.values).toEqual(input);
    expect(off.violations).toEqual(checkEnv(schema, input).violations);
    expect(off.violations).toEqual([]);
  });

  it("accepts a process.env-like record, skipping undefined entries and inherited names", () => {
    const values: Record<string, string | undefined> = {
      API_URL: "https://x.example",
      API_TOKEN: "tok_abcdEFGH",
      UNSET: undefined,
    };
    const result = checkEnv(schema, values);
    expect(result.violations).toEqual([]);
    expect(Object.hasOwn(result.values, "UNSET")).toBe(false);
    const tricky = parseEnvSchema({ toString: { required: true }, constructor: { format: "int" } });
    expect(checkEnv(tricky, {}).violations.map((v) => [v.key, v.kind])).toEqual([["toString", "missing"]]);
  });

  it("is satisfied by an empty schema whatever the values", () => {
    expect(checkEnv(parseEnvSchema({}), { ANY: "thing" })).toEqual({
      violations: [],
      values: { ANY: "thing" },
    });
  });
});

describe("assertEnv", () => {
  const schema = parseEnvSchema({ A: { required: true }, B: { format: "int", default: "1" } });

  it("returns the values with defaults applied", () => {
    expect(assertEnv(schema, { A: "x" })).toEqual({ A: "x", B: "1" });
  });

  it("throws LK_ENV_CHECK_FAILED listing every violation", () => {
    const error = thrown(() => assertEnv(schema, { B: "one-secret-value" }));
    expect(isLatchkeyError(error, "LK_ENV_CHECK_FAILED")).toBe(true);
    expect(error.exitCode).toBe(ExitCode.failure);
    expect(error.message).toMatch(/^2 environment variable problems: A is required .* B is not a valid int/);
    expect(error.message).not.toContain("one-secret-value");
    expect(JSON.stringify(error.toJSON())).not.toContain("one-secret-value");
    expect((error.details as { violations: unknown[] }).violations).toHaveLength(2);
  });
});

describe("isSecretKey", () => {
  const schema = parseEnvSchema({ TOKEN: { secret: true }, NAME: { secret: false }, PLAIN: {} });

  it("is true only for rules with secret: true", () => {
    expect(isSecretKey(schema, "TOKEN")).toBe(true);
    expect(isSecretKey(schema, "NAME")).toBe(false);
    expect(isSecretKey(schema, "PLAIN")).toBe(false);
    expect(isSecretKey(schema, "ABSENT")).toBe(false);
    expect(isSecretKey(schema, "toString")).toBe(false);
    expect(isSecretKey({ TOKEN: { secret: true } }, "hasOwnProperty")).toBe(false);
  });
});

describe("violation messages never contain the value", () => {
  const formats = fc.constantFrom(...ENV_FORMATS);
  const values = fc.oneof(
    fc.string({ minLength: 4, maxLength: 40 }),
    fc.string({ minLength: 4, maxLength: 40, unit: "grapheme" }),
    fc.string({ minLength: 4, maxLength: 40, unit: fc.constantFrom(..."0123456789abcdef-=+/:.@ \n") }),
  );

  /** A value of the same length and surrounding whitespace as `value`, sharing none of its characters. */
  function standIn(value: string): string {
    const body = "\u0000".repeat(value.length);
    return value.trim() === value ? body : ` ${body.slice(1)}`;
  }

  /**
   * The message for `value` contains no trace of it. A value that happens to be a substring of the fixed
   * wording (say "port") is skipped for the `includes` check, but the message must still be exactly the one
   * a stand-in value gets: it may depend on the value's length and whitespace, nothing else.
   */
  function assertOpaque(check: (value: string) => string | undefined, value: string): void {
    const message = check(value);
    expect(message).toBeDefined();
    const template = check(standIn(value));
    expect(message).toBe(template);
    if (!template!.includes(value)) expect(message).not.toContain(value);
  }

  it("for format violations", () => {
    fc.assert(
      fc.property(formats, values, fc.boolean(), (format, value, secret) => {
        fc.pre(!matchesFormat(format, value));
        const check = (v: string) => validateValue("SOME_KEY", { format, secret }, v)?.message;
        assertOpaque(check, value);
        expect(check(value)).toContain(`SOME_KEY is not a valid ${format}: expected `);
      }),
      { numRuns: 1000 },
    );
  });

  it("for pattern violations", () => {
    const rule = (secret: boolean) => parseEnvSchema({ K: { pattern: "[0-9]{4,}", secret } }).K!;
    fc.assert(
      fc.property(values, fc.boolean(), (value, secret) => {
        fc.pre(!/^[0-9]{4,}$/.test(value));
        const check = (v: string) => validateValue("K", rule(secret), v)?.message;
        assertOpaque(check, value);
        expect(check(value)).toContain('K does not match its pattern "[0-9]{4,}"');
      }),
      { numRuns: 500 },
    );
  });

  it("for every violation checkEnv reports", () => {
    const schema = parseEnvSchema({
      A: { format: "email", pattern: ".+@corp\\.example", secret: true },
      B: { format: "hostname" },
      C: { format: "json", required: true },
    });
    fc.assert(
      fc.property(values, values, values, (a, b, c) => {
        const input: Record<string, string> = { A: a, B: b, C: c };
        for (const violation of checkEnv(schema, input).violations) {
          const value = input[violation.key]!;
          // A stand-in breaks every rule, so it gets a violation of the same kind, which must read the same.
          const same = checkEnv(schema, { [violation.key]: standIn(value) }).violations.find(
            (v) => v.key === violation.key && v.kind === violation.kind,
          );
          expect(violation.message).toBe(same?.message);
          if (!same!.message.includes(value)) expect(violation.message).not.toContain(value);
        }
      }),
      { numRuns: 300 },
    );
  });
});

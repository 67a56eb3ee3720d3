import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { formatDotenv, formatJson, formatShell, isEnvVariableName, parseDotenv } from "./dotenv.js";
import { isLatchkeyError, type ErrorCode, type LatchkeyError } from "./errors.js";

const nameArb = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,15}$/);
// Characters every quoting rule has to get right, weighted up because arbitrary strings rarely contain them.
const trickyUnit = fc.constantFrom(
  ..."'\"`\\$#= \t\n\r\u00a0\u2028\ufeff\u00e9\u{1F511}xnrt",
  "\\n",
  "\\\\",
  "\r\n",
  '\\"',
  "'\\''",
  " #",
  "${HOME}",
);
const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
const noNul = (s: string): string => s.replaceAll("\0", "");
const valueArb = fc
  .oneof(
    fc.string({ unit: "grapheme" }),
    fc.string({ unit: "binary" }),
    fc.string({ unit: trickyUnit }),
    fc.string({ unit: fc.oneof(trickyUnit, loneSurrogate, fc.string({ unit: "binary", maxLength: 1 })) }),
  )
  .map(noNul);
const uniqueEntriesArb = fc.uniqueArray(fc.tuple(nameArb, valueArb), {
  selector: ([name]) => name,
  maxLength: 20,
});

/** Runs `fn`, expecting LK_DOTENV_INVALID, and returns the error. */
function parseError(text: string, source?: string): LatchkeyError {
  try {
    parseDotenv(text, source);
  } catch (error) {
    if (isLatchkeyError(error, "LK_DOTENV_INVALID")) return error;
    throw error;
  }
  throw new Error("expected parseDotenv to fail");
}

describe("parseDotenv", () => {
  it("reads blank lines, comment lines and plain assignments", () => {
    const text = "\n# a comment\n   # indented comment\n\t\nA=1\n\nB=two\n# last";
    expect(parseDotenv(text)).toEqual([
      ["A", "1"],
      ["B", "two"],
    ]);
    expect(parseDotenv("")).toEqual([]);
    expect(parseDotenv("# only a comment")).toEqual([]);
  });

  it("accepts an `export` prefix, and `export` as a name when `=` follows it", () => {
    expect(
      parseDotenv("export A=1\nexport\t\tB=2\n  export C = 3\nexport=4\nexport  = 5\nexportD=6"),
    ).toEqual([
      ["A", "1"],
      ["B", "2"],
      ["C", "3"],
      ["export", "5"],
      ["exportD", "6"],
    ]);
  });

  it("allows spaces and tabs around `=` and trims unquoted values", () => {
    expect(parseDotenv("A = 1\nB\t=\tvalue with  inner   spaces \t\nC=   \nD=")).toEqual([
      ["A", "1"],
      ["B", "value with  inner   spaces"],
      ["C", ""],
      ["D", ""],
    ]);
  });

  it("starts an inline comment at a `#` after a blank, and only there", () => {
    expect(
      parseDotenv("A=abc # note\nB=abc\t#note\nC=abc#def\nD=#fff\nE= # only a comment\nF=a#b #c\nG=x ## y"),
    ).toEqual([
      ["A", "abc"],
      ["B", "abc"],
      ["C", "abc#def"],
      ["D", "#fff"],
      ["E", ""],
      ["F", "a#b"],
      ["G", "x"],
    ]);
  });

  it("keeps quotes and backslashes inside unquoted values literally", () => {
    expect(parseDotenv('A=it\'s "ok"\nB=C:\\dir\\n\nC=a`b')).toEqual([
      ["A", `it's "ok"`],
      ["B", "C:\\dir\\n"],
      ["C", "a`b"],
    ]);
  });

  it("reads single-quoted values literally, across lines", () => {
    expect(parseDotenv("A='  a \\n $HOME # not a comment \"x\" '\nB='line1\nline2'\nC=''")).toEqual([
      ["A", '  a \\n $HOME # not a comment "x" '],
      ["B", "line1\nline2"],
      ["C", ""],
    ]);
  });

  it("reads backtick-quoted values literally, across lines", () => {
    expect(parseDotenv('A=`it\'s "both" \\n`\nB=`x\ny`')).toEqual([
      ["A", `it's "both" \\n`],
      ["B", "x\ny"],
    ]);
  });

  it("decodes the double-quote escapes and keeps other backslash sequences as written", () => {
    expect(parseDotenv(String.raw`A="n\n r\r t\t q\" b\\ d\$ u\u00e9 x\x end"`)).toEqual([
      ["A", 'n\n r\r t\t q" b\\ d$ u\\u00e9 x\\x end'],
    ]);
    expect(parseDotenv(String.raw`A="\\n"` + "\n" + String.raw`B="C:\dir"` + '\nC="a\\\nb"')).toEqual([
      ["A", "\\n"],
      ["B", "C:\\dir"],
      ["C", "a\\\nb"],
    ]);
  });

  it("reads multi-line double-quoted values and `#` inside quotes", () => {
    expect(parseDotenv('A="line1\nline2\n"\nB="a # b"\nC=""')).toEqual([
      ["A", "line1\nline2\n"],
      ["B", "a # b"],
      ["C", ""],
    ]);
  });

  it("allows blanks and a comment after a closing quote", () => {
    expect(parseDotenv("A='x'  # c\nB=\"y\"#c\nC=`z`\t\nD = 'w'")).toEqual([
      ["A", "x"],
      ["B", "y"],
      ["C", "z"],
      ["D", "w"],
    ]);
  });

  it("treats CRLF and lone CR as line breaks, inside quotes too", () => {
    expect(parseDotenv("A=1\r\nB=\"x\r\ny\"\r\nC='p\rq'\r# c\rD=2 \r\n")).toEqual([
      ["A", "1"],
      ["B", "x\ny"],
      ["C", "p\nq"],
      ["D", "2"],
    ]);
  });

  it("ignores a leading byte-order mark", () => {
    expect(parseDotenv("\uFEFFA=1")).toEqual([["A", "1"]]);
  });

  it("keeps the last value of a repeated name at the name's first position", () => {
    expect(parseDotenv("A=1\nB=2\nA=3\nC=4\nB=5")).toEqual([
      ["A", "3"],
      ["B", "5"],
      ["C", "4"],
    ]);
  });

  it("treats names like __proto__ and constructor as ordinary names", () => {
    expect(parseDotenv("__proto__=x\nconstructor=y\ntoString=z")).toEqual([
      ["__proto__", "x"],
      ["constructor", "y"],
      ["toString", "z"],
    ]);
  });

  it("reads unicode names' neighbours and values untouched", () => {
    expect(parseDotenv("A=héllo🔑\nB='日本語'\nC=\"\u2028\"")).toEqual([
      ["A", "héllo🔑"],
      ["B", "日本語"],
      ["C", "\u2028"],
    ]);
  });

  it("parses a realistic project .env", () => {
    const text = [
      "# Application",
      "NODE_ENV=development",
      "PORT=3000 # dev server",
      "",
      "# Database",
      'export DATABASE_URL="postgres://app:p%40ss#word@localhost:5432/app?sslmode=disable"',
      "REDIS_URL='redis://:s3cr#t@127.0.0.1:6379/0'",
      "",
      "# Third parties",
      "STRIPE_SECRET_KEY=sk_test_51H8abcdEFGHijklMNOP",
      "SENTRY_DSN=https://abc123@o0.ingest.sentry.io/42",
      'GREETING="Hello, ${USER}!"',
      "EMPTY=",
      "",
      "# Signing key",
      'JWT_PRIVATE_KEY="-----BEGIN PRIVATE KEY-----',
      "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
      "q1w2e3r4t5y6u7i8o9p0+/==",
      '-----END PRIVATE KEY-----"',
      'ESCAPED_KEY="-----BEGIN PUBLIC KEY-----\\nMFkwEwYH\\n-----END PUBLIC KEY-----\\n"',
      "",
    ].join("\r\n");
    expect(Object.fromEntries(parseDotenv(text, ".env"))).toEqual({
      NODE_ENV: "development",
      PORT: "3000",
      DATABASE_URL: "postgres://app:p%40ss#word@localhost:5432/app?sslmode=disable",
      REDIS_URL: "redis://:s3cr#t@127.0.0.1:6379/0",
      STRIPE_SECRET_KEY: "sk_test_51H8abcdEFGHijklMNOP",
      SENTRY_DSN: "https://abc123@o0.ingest.sentry.io/42",
      GREETING: "Hello, ${USER}!",
      EMPTY: "",
      JWT_PRIVATE_KEY:
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nq1w2e3r4t5y6u7i8o9p0+/==\n-----END PRIVATE KEY-----",
      ESCAPED_KEY: "-----BEGIN PUBLIC KEY-----\nMFkwEwYH\n-----END PUBLIC KEY-----\n",
    });
  });
});

describe("parseDotenv errors", () => {
  const SECRET = "s3cr3t-Value-42";
  const cases: Array<{ problem: string; text: string; line: number; column: number; says: RegExp }> = [
    {
      problem: "unterminated double quote",
      text: `OK=1\nTOKEN="${SECRET}\nmore ${SECRET}\n`,
      line: 2,
      column: 7,
      says: /double-quoted value that starts here is never closed/,
    },
    {
      problem: "unterminated double quote ending in a backslash",
      text: `TOKEN="${SECRET}\\`,
      line: 1,
      column: 7,
      says: /never closed/,
    },
    {
      problem: "double quote closed only by an escaped quote",
      text: `TOKEN="${SECRET}\\"`,
      line: 1,
      column: 7,
      says: /never closed/,
    },
    {
      problem: "unterminated single quote",
      text: `# c\n\nTOKEN = '${SECRET}`,
      line: 3,
      column: 9,
      says: /single-quoted value that starts here is never closed/,
    },
    {
      problem: "unterminated backtick",
      text: `TOKEN=\`${SECRET}`,
      line: 1,
      column: 7,
      says: /backtick-quoted value .* never closed/,
    },
    {
      problem: "name starting with a digit",
      text: `A=1\n1TOKEN=${SECRET}`,
      line: 2,
      column: 1,
      says: /must start with a letter or `_`/,
    },
    {
      problem: "name with a dash",
      text: `MY-TOKEN=${SECRET}`,
      line: 1,
      column: 3,
      says: /only letters, digits and `_`/,
    },
    {
      problem: "name with a dot",
      text: `export app.token=${SECRET}`,
      line: 1,
      column: 11,
      says: /only letters, digits and `_`/,
    },
    {
      problem: "missing = (space-separated)",
      text: `TOKEN ${SECRET}`,
      line: 1,
      column: 7,
      says: /expected `=` after the variable name/,
    },
    {
      problem: "missing = (YAML style)",
      text: `TOKEN: ${SECRET}`,
      line: 1,
      column: 6,
      says: /expected `=`/,
    },
    {
      problem: "missing = (name alone)",
      text: "A=1\r\nTOKEN\r\n",
      line: 2,
      column: 6,
      says: /expected `=`/,
    },
    {
      problem: "an unquoted multi-line value's second line",
      text: `KEY=-----BEGIN KEY-----\n${SECRET.replaceAll("-", "")}\n-----END KEY-----`,
      line: 2,
      column: SECRET.replaceAll("-", "").length + 1,
      says: /expected `=`/,
    },
    {
      problem: "a value line starting with a symbol",
      text: `KEY=-----BEGIN KEY-----\n+${SECRET}\n`,
      line: 2,
      column: 1,
      says: /must start with a letter/,
    },
    {
      problem: "text after a closing quote",
      text: `TOKEN="abc" ${SECRET}`,
      line: 1,
      column: 13,
      says: /unexpected text after the closing quote/,
    },
    {
      problem: "dotenv-style escaped single quote",
      text: `TOKEN='it\\'s-${SECRET}'`,
      line: 1,
      column: 12,
      says: /unexpected text after the closing quote/,
    },
    {
      problem: "text after a multi-line quoted value",
      text: `TOKEN="a\nb"${SECRET}`,
      line: 2,
      column: 3,
      says: /unexpected text after the closing quote/,
    },
    {
      problem: "NUL in a value",
      text: `A=1\nTOKEN=abc\0${SECRET}`,
      line: 2,
      column: 10,
      says: /NUL character/,
    },
    {
      problem: "NUL in a comment",
      text: `# \0${SECRET}\nA=1`,
      line: 1,
      column: 3,
      says: /NUL character/,
    },
    {
      problem: "columns count code points",
      text: `A='🔑🔑' ${SECRET}`,
      line: 1,
      column: 8,
      says: /unexpected text/,
    },
  ];

  for (const { problem, text, line, column, says } of cases) {
    it(`reports ${problem} with its line and column, not the value`, () => {
      const error = parseError(text, "config/.env");
      expect(error.message).toBe(error.message.trim());
      expect(error.message).toMatch(says);
      expect(error.message).toContain(`config/.env, line ${line}, column ${column}: `);
      expect(error.details).toEqual({ source: "config/.env", line, column });
      expect(error.exitCode).toBe(2);
      for (const fragment of [SECRET, SECRET.slice(0, 6), SECRET.slice(-6), "BEGIN"]) {
        expect(error.message).not.toContain(fragment);
        expect(error.hint).not.toContain(fragment);
        expect(JSON.stringify(error.toJSON())).not.toContain(fragment);
      }
    });
  }

  it("names the input generically when no source is given", () => {
    const error = parseError("A");
    expect(error.message).toBe("The .env input, line 1, column 2: expected `=` after the variable name.");
    expect(error.details).toEqual({ line: 1, column: 2 });
  });

  it("never puts a secret from a malformed file into the message (property)", () => {
    const secretArb = fc.stringMatching(/^[A-Za-z0-9]{12,24}$/).map((s) => `Zq${s}`);
    const malformed = [
      (s: string) => `A=1\nTOKEN="${s}`,
      (s: string) => `TOKEN='${s}\n\n`,
      (s: string) => `TOKEN ${s}`,
      (s: string) => `${s}\n`,
      (s: string) => `KEY=x\n${s}-tail=1`,
      (s: string) => `TOKEN="x"${s}`,
      (s: string) => `TOKEN=${s}\0`,
      (s: string) => `1${s}=v`,
    ];
    fc.assert(
      fc.property(
        secretArb,
        fc.constantFrom(...malformed),
        fc.constantFrom(undefined, ".env"),
        (s, make, src) => {
          const error = parseError(make(s), src);
          expect(error.message).not.toContain(s.slice(0, 8));
          expect(error.message).not.toContain(s.slice(-8));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("fails only with LK_DOTENV_INVALID on arbitrary input (property)", () => {
    const textArb = fc.oneof(
      fc.string({ unit: "binary" }),
      fc.string({ unit: fc.constantFrom(..."AZ_az09 \t=#'\"`\\\r\n\0e", "export ", "$X") }),
    );
    fc.assert(
      fc.property(textArb, (text) => {
        try {
          const entries = parseDotenv(text);
          for (const [name] of entries) expect(isEnvVariableName(name)).toBe(true);
        } catch (error) {
          if (!isLatchkeyError(error, "LK_DOTENV_INVALID")) throw error;
        }
      }),
      { numRuns: 5000 },
    );
  });
});

describe("formatDotenv", () => {
  it("chooses the plainest exact quoting", () => {
    expect(
      formatDotenv([
        ["EMPTY", ""],
        ["BARE", "postgres://u@h:5432/db,x=1%20-_.+"],
        ["SPACE", " padded value "],
        ["HASH", "a#b"],
        ["DOLLAR", "$HOME"],
        ["DOUBLE", 'say "hi"'],
        ["SINGLE", "it's"],
        ["MIXED", `it's "$5" \\o/`],
        ["LINES", "a\nb\r\nc"],
        ["TAB", "a\tb"],
      ]),
    ).toBe(
      [
        "EMPTY=",
        "BARE=postgres://u@h:5432/db,x=1%20-_.+",
        "SPACE=' padded value '",
        "HASH='a#b'",
        "DOLLAR='$HOME'",
        `DOUBLE='say "hi"'`,
        `SINGLE="it's"`,
        String.raw`MIXED="it's \"\$5\" \\o/"`,
        String.raw`LINES="a\nb\r\nc"`,
        "TAB='a\tb'",
        "",
      ].join("\n"),
    );
    expect(formatDotenv([])).toBe("");
    expect(formatDotenv(new Map([["A", "1"]]))).toBe("A=1\n");
  });

  it("rejects invalid names and NUL values, naming the variable but not the value", () => {
    const formatError = (code: ErrorCode, run: () => string): LatchkeyError => {
      try {
        run();
      } catch (error) {
        if (isLatchkeyError(error, code)) return error;
        throw error;
      }
      throw new Error("expected the format to fail");
    };
    for (const format of [formatDotenv, formatShell, formatJson]) {
      for (const name of ["", "1A", "A-B", "A.B", "A B", "A=1; rm -rf ~", "é", "A\nB"]) {
        const error = formatError("LK_ENV_KEY_INVALID", () =>
          format([
            ["OK", "1"],
            [name, "s3cr3t"],
          ]),
        );
        expect(error.exitCode).toBe(2);
        expect(error.message).toContain(JSON.stringify(name));
        expect(error.message).not.toContain("s3cr3t");
      }
      const error = formatError("LK_ENV_VALUE_INVALID", () => format([["TOKEN", "s3cr3t\0value"]]));
      expect(error.message).toContain("TOKEN");
      expect(error.message).not.toContain("s3cr3t");
    }
    expect(isEnvVariableName("_")).toBe(true);
    expect(isEnvVariableName("a1_B")).toBe(true);
    expect(isEnvVariableName("A\n")).toBe(false);
  });

  it("round-trips every valid name and NUL-free value through parseDotenv (property)", () => {
    fc.assert(
      fc.property(uniqueEntriesArb, (entries) => {
        expect(parseDotenv(formatDotenv(entries))).toEqual(entries);
      }),
      { numRuns: 10_000 },
    );
  });

  it("round-trips repeated names as last value at first position (property)", () => {
    const entriesArb = fc.array(fc.tuple(fc.constantFrom("A", "B", "_c", "D9"), valueArb), { maxLength: 12 });
    fc.assert(
      fc.property(entriesArb, (entries) => {
        expect(parseDotenv(formatDotenv(entries))).toEqual([...new Map(entries)]);
      }),
      { numRuns: 2000 },
    );
  });

  it("still reads the same after hand edits: export, blanks around =, comments, CRLF (property)", () => {
    const styleArb = fc.record({
      exported: fc.boolean(),
      indent: fc.constantFrom("", " ", "\t"),
      before: fc.constantFrom("", " ", " \t"),
      after: fc.constantFrom("", " ", "\t "),
      comment: fc.constantFrom("", " # note", "\t#", "  # a 'quoted' \"note\" = x"),
      preceding: fc.constantFrom("", "\n", "# comment\n", "  \t\n#\n"),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(nameArb, valueArb, styleArb), { selector: ([name]) => name, maxLength: 10 }),
        fc.constantFrom("\n", "\r\n", "\r"),
        (rows, eol) => {
          const text = rows
            .map(([name, value, style]) => {
              const line = formatDotenv([[name, value]]).slice(0, -1);
              const rest = line.slice(name.length + 1);
              const exported = style.exported ? "export " : "";
              return `${style.preceding}${style.indent}${exported}${name}${style.before}=${style.after}${rest}${style.comment}\n`;
            })
            .join("")
            .replaceAll("\n", eol);
          expect(parseDotenv(text)).toEqual(rows.map(([name, value]) => [name, value]));
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe("formatJson", () => {
  it("writes a 2-space indented object with a trailing newline", () => {
    expect(
      formatJson([
        ["B", "1"],
        ["A", 'x"\n'],
      ]),
    ).toBe('{\n  "B": "1",\n  "A": "x\\"\\n"\n}\n');
    expect(formatJson([])).toBe("{}\n");
  });

  it("keeps __proto__ as an ordinary entry", () => {
    const json = formatJson([["__proto__", "x"]]);
    expect(json).toBe('{\n  "__proto__": "x"\n}\n');
    expect(Object.entries(JSON.parse(json) as object)).toEqual([["__proto__", "x"]]);
  });

  it("round-trips through JSON.parse (property)", () => {
    fc.assert(
      fc.property(uniqueEntriesArb, (entries) => {
        const text = formatJson(entries);
        expect(text.endsWith("\n")).toBe(true);
        expect(Object.entries(JSON.parse(text) as object)).toEqual(entries);
      }),
      { numRuns: 5000 },
    );
  });
});

describe("formatShell", () => {
  it("single-quotes every value and writes `'` as '\\''", () => {
    expect(
      formatShell([
        ["A", "it's"],
        ["B", ""],
        ["C", "$(rm -rf ~) `x` \\ \"\n'"],
      ]),
    ).toBe("export A='it'\\''s'\nexport B=''\nexport C='$(rm -rf ~) `x` \\ \"\n'\\'''\n");
  });

  const dir = mkdtempSync(join(tmpdir(), "latchkey-dotenv-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // /bin/sh is dash on Debian; bash is checked too, and missing only where CI would have installed it. --norc
  // because bash reads ~/.bashrc when its stdin is a socket, as it is under Node's spawn.
  const shells = [
    { command: "/bin/sh", args: [] as string[] },
    { command: "bash", args: ["--norc", "--noprofile"] },
  ].filter(({ command, args }) => {
    const found = spawnSync(command, [...args, "-c", "exit 0"], { stdio: "ignore" }).status === 0;
    if (!found) {
      if (process.env.CI === "true") throw new Error(`${command} is required under CI=true`);
      console.warn(`skipping the ${command} part of the real-shell test: ${command} not found`);
    }
    return found;
  });

  it.skipIf(process.platform === "win32" || shells.length === 0)(
    `sources and evals byte-exactly in real shells (${shells.map((shell) => shell.command).join(", ")}) (property)`,
    () => {
      // Fixed prefixes keep generated names off the shells' own variables (RANDOM, LINENO, PATH, IFS, …).
      const shellEntriesArb = fc
        .array(
          fc.tuple(
            fc.stringMatching(/^[A-Za-z0-9_]{0,8}$/),
            fc.oneof(fc.string({ unit: "grapheme" }), fc.string({ unit: trickyUnit })),
          ),
          { minLength: 8, maxLength: 30 },
        )
        .map((rows) =>
          rows.map(([suffix, value], i): [string, string] => [`LK_T${i}_${suffix}`, noNul(value)]),
        );
      let run = 0;
      let checked = 0;
      fc.assert(
        fc.property(shellEntriesArb, (entries) => {
          const file = join(dir, `env-${run++}.sh`);
          writeFileSync(file, formatShell(entries));
          const print = `printf '%s\\0' ${entries.map(([name]) => `"$${name}"`).join(" ")}`;
          const expected = Buffer.from(entries.map(([, value]) => `${value}\0`).join(""), "utf8");
          for (const { command, args } of shells) {
            for (const load of [`. '${file}'`, `eval "$(cat '${file}')"`]) {
              const result = spawnSync(command, [...args, "-c", `${load} && ${print}`], {
                env: { PATH: process.env.PATH, LC_ALL: "C" },
                stdio: ["ignore", "pipe", "pipe"],
              });
              expect(result.stderr.toString()).toBe("");
              expect(result.status).toBe(0);
              expect(result.stdout.equals(expected)).toBe(true);
            }
          }
          checked += entries.length;
        }),
        { numRuns: 30 },
      );
      expect(checked).toBeGreaterThan(240);
    },
  );
});

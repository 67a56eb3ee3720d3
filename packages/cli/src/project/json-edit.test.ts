import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  JsonPathError,
  JsonSyntaxError,
  MAX_JSON_DEPTH,
  detectStyle,
  lineColumn,
  parseJsonTree,
  setJsonValue,
} from "./json-edit.js";
import type { JsonNode } from "./json-edit.js";

function syntaxError(text: string): { at: string; message: string } {
  try {
    parseJsonTree(text);
  } catch (err) {
    if (!(err instanceof JsonSyntaxError)) throw err;
    const { line, column } = lineColumn(text, err.offset);
    return { at: `${line}:${column}`, message: err.message };
  }
  throw new Error(`expected ${JSON.stringify(text)} to be rejected`);
}

/** Every node's span, parsed on its own, is the value JSON.parse finds at that place. */
function checkSpans(text: string, node: JsonNode, value: unknown): void {
  expect(JSON.parse(text.slice(node.start, node.end))).toEqual(value);
  if (node.type === "object") {
    const object = value as Record<string, unknown>;
    expect(node.members.map((m) => m.key)).toEqual(Object.keys(object));
    for (const member of node.members) {
      expect(JSON.parse(text.slice(member.keyStart, member.keyEnd))).toBe(member.key);
      checkSpans(text, member.value, Object.getOwnPropertyDescriptor(object, member.key)?.value);
    }
  } else if (node.type === "array") {
    const array = value as unknown[];
    expect(node.items).toHaveLength(array.length);
    node.items.forEach((item, i) => checkSpans(text, item, array[i]));
  }
}

/** Formats like `JSON.stringify(value, null, indent)`, then with the given line ending and final newline. */
function stringify(value: unknown, indent: string, newline: string, final: boolean): string {
  const text = JSON.stringify(value, null, indent).replace(/\n/g, newline);
  return final ? text + newline : text;
}

const jsonValue = fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.parse(JSON.stringify(v)) as unknown);
// Integer-like keys are excluded: JavaScript orders them first in any object, which would make the expected
// member order differ from the text's.
const objectKey = fc.string({ maxLength: 6 }).filter((k) => !/^(?:0|[1-9][0-9]*)$/.test(k));
const jsonObject = fc
  .dictionary(objectKey, jsonValue, { maxKeys: 5 })
  .map((v) => JSON.parse(JSON.stringify(v)) as Record<string, unknown>);
const layout = fc.record({
  indent: fc.constantFrom("", "  ", "    ", "\t"),
  newline: fc.constantFrom("\n", "\r\n"),
  final: fc.boolean(),
});

describe("parseJsonTree", () => {
  it("accepts exactly what JSON.parse accepts, except duplicate keys (property)", () => {
    const alphabet = fc.constantFrom(..."{}[]:,\"'\\/*-+.0123456789eEtrufalsn \n\r\tx\u0001\u00e9");
    const mutated = fc
      .tuple(
        fc.json({ maxDepth: 3 }),
        fc.nat(),
        fc.nat({ max: 3 }),
        fc.string({ unit: alphabet, maxLength: 3 }),
      )
      .map(([json, at, removed, inserted]) => {
        const i = at % (json.length + 1);
        return json.slice(0, i) + inserted + json.slice(i + removed);
      });
    const text = fc.oneof(fc.json({ maxDepth: 3 }), mutated, fc.string({ unit: alphabet, maxLength: 12 }));
    fc.assert(
      fc.property(text, (candidate) => {
        let native = true;
        try {
          JSON.parse(candidate);
        } catch {
          native = false;
        }
        let ours = true;
        try {
          parseJsonTree(candidate);
        } catch (err) {
          expect(err).toBeInstanceOf(JsonSyntaxError);
          const offset = (err as JsonSyntaxError).offset;
          expect(offset).toBeGreaterThanOrEqual(0);
          expect(offset).toBeLessThanOrEqual(candidate.length);
          if ((err as Error).message.startsWith("duplicate property")) return;
          ours = false;
        }
        expect(ours).toBe(native);
      }),
      { numRuns: 20_000 },
    );
  });

  it("spans every value and key exactly (property)", () => {
    fc.assert(
      fc.property(jsonValue, layout, (value, { indent, newline, final }) => {
        const text = stringify(value, indent, newline, final);
        checkSpans(text, parseJsonTree(text), value);
      }),
      { numRuns: 2_000 },
    );
  });

  it.each([
    ["", "1:1", "expected a JSON value, found the end of the file"],
    ["  \n ", "2:2", "expected a JSON value, found the end of the file"],
    ['{\n  "a": 1,\n}', "2:9", 'trailing comma before "}"'],
    ["[1, 2,]", "1:6", 'trailing comma before "]"'],
    ['{\n  // note\n  "a": 1\n}', "2:3", "comments are not allowed: this file is strict JSON, not JSONC"],
    ['{"a": 1 /* x */}', "1:9", "comments are not allowed"],
    ['{"a": 1}\n// trailing', "2:1", "comments are not allowed"],
    ["{'a': 1}", "1:2", "strings must be in double quotes"],
    ["{a: 1}", "1:2", "expected a property name in double quotes, found `a`"],
    ['{\n  "a": 1\n  "b": 2\n}', "3:3", 'expected "," or "}" after a property, found """'],
    ['{"a" 1}', "1:6", 'expected ":" after the property name, found "1"'],
    ['{"a": }', "1:7", 'expected a value, found "}"'],
    ['{"a": tru}', "1:7", "expected a value, found `tru`"],
    ['{"a": undefined}', "1:7", "expected a value, found `undefined`"],
    ['{"a": 01}', "1:7", "invalid number"],
    ['{"a": 1.}', "1:7", "invalid number"],
    ['{"a": -}', "1:7", "invalid number"],
    ['{"a": +1}', "1:7", 'expected a value, found "+"'],
    ['{"a": "x', "1:7", "unterminated string"],
    ['{"a": "x\ny"}', "1:9", "U+000A must be escaped inside a string (a string cannot span lines)"],
    ['{"a": "\\x"}', "1:8", 'invalid escape "\\x"'],
    ['{"a": "\\u12"}', "1:8", 'invalid "\\u" escape'],
    ['{"a": 1}}', "1:9", 'expected the end of the file after the JSON value, found "}"'],
    ['{"a": 1, "a": 2}', "1:10", 'duplicate property "a" (first at line 1, column 2)'],
    ['{"x": {\n  "k": 1,\n  "k": 2}}', "3:3", 'duplicate property "k" (first at line 2, column 3)'],
    ['{"a": "\u00e9\u00e9", "b" 1}', "1:17", 'expected ":"'],
    ['{"\ud83d\ude00": 1 2}', "1:9", 'expected "," or "}"'],
    ['{"a": 1,\r\n  "b": x}', "2:8", "expected a value, found `x`"],
    ['{"a": 1,\r  "b": x}', "2:8", "expected a value"],
    ['\u00a0{"a": 1}', "1:1", "expected a value, found U+00A0"],
    ["\ufeff{}", "1:1", "expected a value, found U+FEFF"],
  ])("rejects %j at %s", (text, at, message) => {
    const err = syntaxError(text);
    expect(err.at).toBe(at);
    expect(err.message).toContain(message);
  });

  it(`refuses nesting deeper than ${MAX_JSON_DEPTH} levels instead of overflowing the stack`, () => {
    const ok = "[".repeat(MAX_JSON_DEPTH) + "]".repeat(MAX_JSON_DEPTH);
    expect(parseJsonTree(ok).type).toBe("array");
    const deep = `{"a": ${"[".repeat(100_000)}`;
    expect(syntaxError(deep).message).toContain(`nested more than ${MAX_JSON_DEPTH} levels deep`);
  });
});

describe("lineColumn", () => {
  it("counts LF, CRLF and lone CR as line ends and code points as columns", () => {
    expect(lineColumn("abc", 0)).toEqual({ line: 1, column: 1 });
    expect(lineColumn("abc", 2)).toEqual({ line: 1, column: 3 });
    expect(lineColumn("a\nbc", 3)).toEqual({ line: 2, column: 2 });
    expect(lineColumn("a\r\nbc", 4)).toEqual({ line: 2, column: 2 });
    expect(lineColumn("a\r\nbc", 1)).toEqual({ line: 1, column: 2 });
    expect(lineColumn("a\rbc", 3)).toEqual({ line: 2, column: 2 });
    expect(lineColumn("\ud83d\ude00x", 2)).toEqual({ line: 1, column: 2 });
    expect(lineColumn("\udc00x", 1)).toEqual({ line: 1, column: 2 });
    expect(lineColumn("ab", 99)).toEqual({ line: 1, column: 3 });
  });
});

describe("detectStyle", () => {
  it.each([
    ['{\n  "a": 1\n}', { newline: "\n", indent: "  ", colon: ": " }],
    ['{\n    "a": 1\n}', { newline: "\n", indent: "    ", colon: ": " }],
    ['{\n\t"a": 1\n}', { newline: "\n", indent: "\t", colon: ": " }],
    ['{\r\n  "a" : 1\r\n}\r\n', { newline: "\r\n", indent: "  ", colon: " : " }],
    ['{"a":1}', { newline: "\n", indent: "  ", colon: ":" }],
    ['[\n  {\n    "a":1\n  }\n]', { newline: "\n", indent: "  ", colon: ":" }],
    ["{}", { newline: "\n", indent: "  ", colon: ": " }],
  ])("reads %j", (text, style) => {
    expect(detectStyle(text, parseJsonTree(text))).toEqual(style);
  });
});

describe("setJsonValue", () => {
  it.each([
    ["2 spaces", '{\n  "a": 1,\n  "b": [1, 2]\n}\n', '{\n  "vault": "V",\n  "a": 1,\n  "b": [1, 2]\n}\n'],
    [
      "4 spaces",
      '{\n    "a": {\n        "x": 1\n    }\n}',
      '{\n    "vault": "V",\n    "a": {\n        "x": 1\n    }\n}',
    ],
    ["tabs", '{\n\t"a": 1\n}\n', '{\n\t"vault": "V",\n\t"a": 1\n}\n'],
    ["CRLF", '{\r\n  "a": 1\r\n}\r\n', '{\r\n  "vault": "V",\r\n  "a": 1\r\n}\r\n'],
    ["minified", '{"a":1}', '{"vault":"V","a":1}'],
    ["minified, two members", '{"a":1,"b":2}', '{"vault":"V","a":1,"b":2}'],
    ["one line with spaces", '{ "a": 1, "b": 2 }', '{ "vault": "V", "a": 1, "b": 2 }'],
    ["one line, one member", '{"a": 1}', '{"vault": "V", "a": 1}'],
    ["empty", "{}", '{\n  "vault": "V"\n}'],
    ["empty with newline", "{}\n", '{\n  "vault": "V"\n}\n'],
    ["empty with CRLF", "{}\r\n", '{\r\n  "vault": "V"\r\n}\r\n'],
    ["empty over two lines", "{\n}\n", '{\n  "vault": "V"\n}\n'],
    ["empty with a space", "{ }", '{\n  "vault": "V"\n}'],
    ["surrounding blank lines", '\n\n{\n  "a": 1\n}\n\n', '\n\n{\n  "vault": "V",\n  "a": 1\n}\n\n'],
    ["blank line after the brace", '{\n\n  "a": 1\n}', '{\n\n  "vault": "V",\n  "a": 1\n}'],
    ["colon spacing", '{\n  "a" : 1\n}', '{\n  "vault" : "V",\n  "a" : 1\n}'],
    ["first member on the brace line", '{ "a": 1,\n  "b": 2\n}', '{ "vault": "V",\n  "a": 1,\n  "b": 2\n}'],
  ])("inserts a first member into %s", (_name, before, after) => {
    expect(setJsonValue(before, ["vault"], "V", { position: "first" })).toBe(after);
  });

  it.each([
    [
      "a missing nested object, 2 spaces",
      '{\n  "vault": "V"\n}\n',
      '{\n  "vault": "V",\n  "vaultSync": {\n    "personalVersion": 3\n  }\n}\n',
    ],
    [
      "a missing nested object, tabs and CRLF",
      '{\r\n\t"vault": "V"\r\n}\r\n',
      '{\r\n\t"vault": "V",\r\n\t"vaultSync": {\r\n\t\t"personalVersion": 3\r\n\t}\r\n}\r\n',
    ],
    ["a missing nested object, minified", '{"vault":"V"}', '{"vault":"V","vaultSync":{"personalVersion":3}}'],
    [
      "an existing empty object",
      '{\n  "vaultSync": {}\n}',
      '{\n  "vaultSync": {\n    "personalVersion": 3\n  }\n}',
    ],
    ["an existing empty object, minified", '{"vaultSync":{}}', '{"vaultSync":{"personalVersion":3}}'],
    [
      "an existing object, as its last member",
      '{\n  "vaultSync": {\n    "server": "https://x"\n  }\n}',
      '{\n  "vaultSync": {\n    "server": "https://x",\n    "personalVersion": 3\n  }\n}',
    ],
    [
      "an existing one-line object",
      '{\n  "vaultSync": { "server": "s" },\n  "z": 0\n}',
      '{\n  "vaultSync": { "server": "s", "personalVersion": 3 },\n  "z": 0\n}',
    ],
    [
      "an existing value: only its text changes",
      '{\n  "vaultSync": { "personalVersion":   2 , "x": [1,2] }\n}',
      '{\n  "vaultSync": { "personalVersion":   3 , "x": [1,2] }\n}',
    ],
  ])("sets vaultSync.personalVersion in %s", (_name, before, after) => {
    expect(setJsonValue(before, ["vaultSync", "personalVersion"], 3)).toBe(after);
  });

  it("writes objects and arrays laid out like the file", () => {
    const value = { a: [1, { b: null }], c: {}, d: [] };
    expect(setJsonValue('{\n    "x": 1\n}', ["y"], value)).toBe(
      '{\n    "x": 1,\n    "y": {\n        "a": [\n            1,\n            {\n                "b": null\n            }\n        ],\n        "c": {},\n        "d": []\n    }\n}',
    );
    expect(setJsonValue('{"x":1}', ["y"], value)).toBe('{"x":1,"y":{"a":[1,{"b":null}],"c":{},"d":[]}}');
    expect(setJsonValue('{ "x": 1 }', ["y"], [1, 2])).toBe('{ "x": 1, "y": [1, 2] }');
  });

  it("replaces an object value, re-indented at its key's depth", () => {
    expect(setJsonValue('{\n  "a": {\n    "b": 1\n  },\n  "c": 2\n}\n', ["a"], { z: true })).toBe(
      '{\n  "a": {\n    "z": true\n  },\n  "c": 2\n}\n',
    );
  });

  it("escapes keys and values", () => {
    expect(setJsonValue("{}", ['we"ird\n'], "a\u0000\u2028")).toBe('{\n  "we\\"ird\\n": "a\\u0000\u2028"\n}');
  });

  it("refuses a path through a non-object, naming where it is", () => {
    const text = '{\n  "vaultSync": [1]\n}';
    let caught: unknown;
    try {
      setJsonValue(text, ["vaultSync", "personalVersion"], 1);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(JsonPathError);
    expect((caught as JsonPathError).message).toBe('"vaultSync" is an array, not an object');
    expect(lineColumn(text, (caught as JsonPathError).offset)).toEqual({ line: 2, column: 16 });
    expect(() => setJsonValue("[]", ["a"], 1)).toThrow("the top-level value is an array, not an object");
  });

  it("refuses what JSON cannot hold", () => {
    expect(() => setJsonValue("{}", ["a"], Number.NaN)).toThrow(TypeError);
    expect(() => setJsonValue("{}", ["a"], () => 1)).toThrow(TypeError);
    expect(() => setJsonValue("{}", ["a"], new Date(0))).toThrow(TypeError);
    expect(() => setJsonValue("{}", [], 1)).toThrow(TypeError);
  });

  it("inserting into a JSON.stringify-formatted object gives JSON.stringify's output, in any layout (property)", () => {
    fc.assert(
      fc.property(
        jsonObject,
        layout,
        objectKey,
        jsonValue,
        fc.constantFrom("first" as const, "last" as const),
        (object, { indent, newline, final }, key, value, position) => {
          fc.pre(!Object.hasOwn(object, key) && Object.keys(object).length > 0);
          const before = stringify(object, indent, newline, final);
          const after = setJsonValue(before, [key], value, { position });
          const expected = position === "first" ? { [key]: value, ...object } : { ...object, [key]: value };
          expect(after).toBe(stringify(expected, indent, newline, final));
          // A pure insertion: everything before and after the new text is the original.
          let prefix = 0;
          while (prefix < before.length && before[prefix] === after[prefix]) prefix++;
          let suffix = 0;
          while (
            suffix < before.length - prefix &&
            before[before.length - 1 - suffix] === after[after.length - 1 - suffix]
          ) {
            suffix++;
          }
          expect(prefix + suffix).toBe(before.length);
        },
      ),
      { numRuns: 3_000 },
    );
  });

  it("replacing a value changes only that value's text (property)", () => {
    fc.assert(
      fc.property(
        jsonObject,
        layout,
        jsonValue,
        fc.nat(),
        (object, { indent, newline, final }, value, pick) => {
          const keys = Object.keys(object);
          fc.pre(keys.length > 0);
          const key = keys[pick % keys.length] ?? "";
          const before = stringify(object, indent, newline, final);
          const after = setJsonValue(before, [key], value);
          expect(after).toBe(stringify({ ...object, [key]: value }, indent, newline, final));
        },
      ),
      { numRuns: 3_000 },
    );
  });
});

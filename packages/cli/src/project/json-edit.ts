/**
 * Strict JSON (RFC 8259) parsed into source spans, and edits that splice new text into the original. latchkey.json
 * is committed and reviewed in diffs, so an edit must leave every other byte (indentation, key order, line
 * endings, the final newline) exactly as the user wrote it; re-serializing with JSON.stringify would not.
 *
 * The parser exists for positions, not values: callers take values from JSON.parse once it has accepted the
 * text. It accepts exactly what JSON.parse accepts, except duplicate member names, which it rejects because
 * tools disagree on which one wins. Errors carry the offset of the problem, not V8's message, whose wording
 * and position reporting vary by error kind and Node version.
 */

/** A JSON value and where it sits in the text: `start` is its first character, `end` one past its last. */
export type JsonNode = JsonObjectNode | JsonArrayNode | JsonScalarNode;

/** An object with its members in source order. */
export interface JsonObjectNode {
  type: "object";
  start: number;
  end: number;
  members: JsonMember[];
}

/** An array with its items in source order. */
export interface JsonArrayNode {
  type: "array";
  start: number;
  end: number;
  items: JsonNode[];
}

/** A string, number, boolean or null. */
export interface JsonScalarNode {
  type: "string" | "number" | "boolean" | "null";
  start: number;
  end: number;
}

/** One `"key": value` member; `keyStart`/`keyEnd` span the quoted name. */
export interface JsonMember {
  key: string;
  keyStart: number;
  keyEnd: number;
  value: JsonNode;
}

/** The text is not strict JSON; `offset` is where the problem is (a UTF-16 index into the text). */
export class JsonSyntaxError extends Error {
  readonly offset: number;
  constructor(offset: number, message: string) {
    super(message);
    this.name = "JsonSyntaxError";
    this.offset = offset;
  }
}

/** An edit's path runs through something that is not an object; `offset` is where that value starts. */
export class JsonPathError extends Error {
  readonly offset: number;
  constructor(offset: number, message: string) {
    super(message);
    this.name = "JsonPathError";
    this.offset = offset;
  }
}

/** Deeper nesting is refused rather than risking the parser's recursion running out of stack. */
export const MAX_JSON_DEPTH = 512;

/** Parses `text` as strict JSON into a span tree, or throws JsonSyntaxError. A byte order mark is an error. */
export function parseJsonTree(text: string): JsonNode {
  return new Parser(text).document();
}

/** The 1-based line and column of `offset`; `\n`, `\r\n` and a lone `\r` each end a line, columns count code points. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const stop = Math.min(Math.max(offset, 0), text.length);
  for (let i = 0; i < stop; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0a || (c === 0x0d && text.charCodeAt(i + 1) !== 0x0a)) {
      line++;
      lineStart = i + 1;
    }
  }
  let column = 1;
  for (let i = lineStart; i < stop; i++) {
    const c = text.charCodeAt(i);
    const previous = text.charCodeAt(i - 1);
    // The second half of a surrogate pair belongs to the same column as the first.
    const pairTail = c >= 0xdc00 && c <= 0xdfff && i > lineStart && previous >= 0xd800 && previous <= 0xdbff;
    if (!pairTail) column++;
  }
  return { line, column };
}

/** How a file is laid out, so inserted text looks like the text around it. */
export interface JsonStyle {
  /** `\r\n` when the file has any, else `\n`. */
  newline: string;
  /** One level of indentation: a tab or some spaces; two spaces when the file shows none. */
  indent: string;
  /** What sits between a member's name and value, colon included: `": "` unless the file shows otherwise. */
  colon: string;
}

/** Infers the newline, indentation unit and colon spacing of `text` from its first examples of each. */
export function detectStyle(text: string, root: JsonNode): JsonStyle {
  return {
    newline: text.includes("\r\n") ? "\r\n" : "\n",
    indent: findIndentUnit(text, root) ?? "  ",
    colon: findColon(text, root) ?? ": ",
  };
}

/** Where a new member goes when the object lacks the key. */
export interface SetJsonValueOptions {
  position?: "first" | "last";
}

/**
 * Returns `text` with the value at `path` (object keys from the root) set to `value`, which must be
 * JSON-serializable. An existing value's text is replaced and nothing else changes; a missing key is inserted as
 * the object's first or last member (default last), creating missing intermediate objects, laid out like the
 * surrounding text (one line or one member per line, its indentation, newline and colon spacing). Throws
 * JsonSyntaxError for text that is not strict JSON and JsonPathError when the path runs through a non-object.
 */
export function setJsonValue(
  text: string,
  path: readonly string[],
  value: unknown,
  options: SetJsonValueOptions = {},
): string {
  if (path.length === 0) throw new TypeError("setJsonValue: path must name at least one key");
  const root = parseJsonTree(text);
  const style = detectStyle(text, root);
  let node: JsonNode = root;
  // An empty root object is laid out one member per line, as Latchkey writes new files.
  let multiline = isMultiline(text, root) ?? true;
  for (const [index, key] of path.entries()) {
    if (node.type !== "object") {
      const where = index === 0 ? "the top-level value" : formatPath(path.slice(0, index));
      throw new JsonPathError(node.start, `${where} is ${describeType(node)}, not an object`);
    }
    const member = node.members.find((m) => m.key === key);
    if (member === undefined) {
      let nested = value;
      for (const outer of path.slice(index + 1).reverse()) nested = { [outer]: nested };
      return insertMember(text, node, key, nested, options.position ?? "last", style, multiline);
    }
    if (index === path.length - 1) {
      const indent = lineIndentAt(text, member.keyStart);
      const formatted = formatValue(value, style, multiline, indent);
      return splice(text, member.value.start, member.value.end, formatted);
    }
    node = member.value;
    multiline = isMultiline(text, node) ?? multiline;
  }
  throw new Error("unreachable");
}

/**
 * Serializes `value` like JSON.stringify, but laid out in `style`: one member or item per line indented from
 * `indent` when `multiline`, else on one line. Throws TypeError for anything JSON cannot represent.
 */
export function formatValue(value: unknown, style: JsonStyle, multiline: boolean, indent: string): string {
  if (value === null || typeof value === "string" || typeof value === "boolean") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError(`formatValue: ${value} cannot be written as JSON`);
    return JSON.stringify(value);
  }
  const inner = indent + style.indent;
  const join = (open: string, parts: string[], close: string): string => {
    if (parts.length === 0) return open + close;
    if (!multiline) return open + parts.join(style.colon.endsWith(" ") ? ", " : ",") + close;
    const nl = style.newline;
    return `${open}${nl}${inner}${parts.join(`,${nl}${inner}`)}${nl}${indent}${close}`;
  };
  if (Array.isArray(value)) {
    return join(
      "[",
      value.map((item: unknown) => formatValue(item, style, multiline, inner)),
      "]",
    );
  }
  if (typeof value === "object" && isPlainObject(value)) {
    const parts = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${JSON.stringify(k)}${style.colon}${formatValue(v, style, multiline, inner)}`);
    return join("{", parts, "}");
  }
  throw new TypeError(`formatValue: a ${typeof value} cannot be written as JSON`);
}

function insertMember(
  text: string,
  object: JsonObjectNode,
  key: string,
  value: unknown,
  position: "first" | "last",
  style: JsonStyle,
  multiline: boolean,
): string {
  const colon = ownColon(text, object) ?? style.colon;
  const memberStyle = { ...style, colon };
  const braceIndent = lineIndentAt(text, object.start);
  const first = object.members[0];
  const last = object.members.at(-1);

  if (first === undefined || last === undefined) {
    const inside = text.slice(object.start + 1, object.end - 1);
    if (multiline) {
      const indent = braceIndent + style.indent;
      const member = `${JSON.stringify(key)}${colon}${formatValue(value, memberStyle, true, indent)}`;
      return splice(
        text,
        object.start + 1,
        object.end - 1,
        `${style.newline}${indent}${member}${style.newline}${braceIndent}`,
      );
    }
    // `{ }` becomes `{ "key": value }`: the padding the user put inside the braces goes on both sides.
    const member = `${JSON.stringify(key)}${colon}${formatValue(value, memberStyle, false, braceIndent)}`;
    return splice(text, object.start + 1, object.end - 1, `${inside}${member}${inside}`);
  }

  let separator: string;
  let indent: string;
  if (multiline) {
    // The indentation of the members' own lines; a first member sharing the brace's line says nothing.
    const sample = [...object.members].reverse().find((m) => !sameLine(text, object.start, m.keyStart));
    indent = sample ? lineIndentAt(text, sample.keyStart) : braceIndent + style.indent;
    separator = style.newline + indent;
  } else {
    indent = braceIndent;
    const second = object.members[1];
    separator =
      second !== undefined
        ? text.slice(text.indexOf(",", first.value.end) + 1, second.keyStart)
        : colon.endsWith(" ")
          ? " "
          : "";
  }
  const member = `${JSON.stringify(key)}${colon}${formatValue(value, memberStyle, multiline, indent)}`;
  return position === "first"
    ? splice(text, first.keyStart, first.keyStart, `${member},${separator}`)
    : splice(text, last.value.end, last.value.end, `,${separator}${member}`);
}

/**
 * True when the container puts its first member or item on a new line; undefined for an empty container whose
 * braces share a line, which says nothing either way.
 */
function isMultiline(text: string, node: JsonNode): boolean | undefined {
  if (node.type === "object" || node.type === "array") {
    const first = node.type === "object" ? node.members[0]?.keyStart : node.items[0]?.start;
    const inside = text.slice(node.start + 1, first ?? node.end - 1);
    if (/[\r\n]/.test(inside)) return true;
    return first === undefined ? undefined : false;
  }
  return undefined;
}

function findIndentUnit(text: string, node: JsonNode): string | undefined {
  if (node.type !== "object" && node.type !== "array") return undefined;
  const children = node.type === "object" ? node.members.map((m) => m.value) : node.items;
  const firstStart = node.type === "object" ? node.members[0]?.keyStart : node.items[0]?.start;
  if (firstStart !== undefined && !sameLine(text, node.start, firstStart)) {
    const outer = lineIndentAt(text, node.start);
    const inner = lineIndentAt(text, firstStart);
    if (inner.length > outer.length && inner.startsWith(outer)) return inner.slice(outer.length);
  }
  for (const child of children) {
    const unit = findIndentUnit(text, child);
    if (unit !== undefined) return unit;
  }
  return undefined;
}

function findColon(text: string, node: JsonNode): string | undefined {
  if (node.type === "object") {
    const own = ownColon(text, node);
    if (own !== undefined) return own;
  }
  const children =
    node.type === "object" ? node.members.map((m) => m.value) : node.type === "array" ? node.items : [];
  for (const child of children) {
    const colon = findColon(text, child);
    if (colon !== undefined) return colon;
  }
  return undefined;
}

function ownColon(text: string, object: JsonObjectNode): string | undefined {
  for (const member of object.members) {
    const gap = text.slice(member.keyEnd, member.value.start);
    if (!/[\r\n]/.test(gap)) return gap;
  }
  return undefined;
}

/** The spaces and tabs that begin the line holding `offset`. */
function lineIndentAt(text: string, offset: number): string {
  let start = offset;
  while (start > 0 && text[start - 1] !== "\n" && text[start - 1] !== "\r") start--;
  let end = start;
  while (end < offset && (text[end] === " " || text[end] === "\t")) end++;
  return text.slice(start, end);
}

function sameLine(text: string, a: number, b: number): boolean {
  return !/[\r\n]/.test(text.slice(Math.min(a, b), Math.max(a, b)));
}

function splice(text: string, start: number, end: number, insert: string): string {
  return text.slice(0, start) + insert + text.slice(end);
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** The string a JSON string literal (`"a\\u0062"`, quotes included) spells; throws for any other text. */
export function decodeJsonString(literal: string): string {
  const value: unknown = JSON.parse(literal);
  if (typeof value !== "string") throw new SyntaxError("not a JSON string literal");
  return value;
}

/** "an object", "a string", …: for messages about a JSON value of the wrong type. */
export function describeType(node: JsonNode): string {
  switch (node.type) {
    case "object":
      return "an object";
    case "array":
      return "an array";
    case "string":
      return "a string";
    case "number":
      return "a number";
    case "boolean":
      return "a boolean";
    case "null":
      return "null";
  }
}

/** A path for messages: `"vaultSync"."personalVersion"`. */
function formatPath(path: readonly string[]): string {
  return path.map((key) => JSON.stringify(key)).join(".");
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const WORD = /[A-Za-z_$][A-Za-z0-9_$]*/y;
const HEX4 = /^[0-9A-Fa-f]{4}$/;

class Parser {
  private pos = 0;
  constructor(private readonly text: string) {}

  document(): JsonNode {
    this.skipWhitespace();
    if (this.pos >= this.text.length) {
      throw new JsonSyntaxError(this.pos, "expected a JSON value, found the end of the file");
    }
    const node = this.value(0);
    this.skipWhitespace();
    if (this.pos < this.text.length)
      throw this.unexpected("expected the end of the file after the JSON value");
    return node;
  }

  private value(depth: number): JsonNode {
    const start = this.pos;
    switch (this.text[start]) {
      case "{":
        return this.object(depth + 1);
      case "[":
        return this.array(depth + 1);
      case '"':
        this.string();
        return { type: "string", start, end: this.pos };
      case "t":
        return this.literal("true", "boolean");
      case "f":
        return this.literal("false", "boolean");
      case "n":
        return this.literal("null", "null");
      default:
        return this.number();
    }
  }

  private object(depth: number): JsonObjectNode {
    const start = this.enter(depth);
    const members: JsonMember[] = [];
    const seen = new Map<string, number>();
    this.skipWhitespace();
    if (this.text[this.pos] === "}") {
      this.pos++;
      return { type: "object", start, end: this.pos, members };
    }
    for (;;) {
      if (this.text[this.pos] !== '"') throw this.unexpected("expected a property name in double quotes");
      const keyStart = this.pos;
      this.string();
      const keyEnd = this.pos;
      const key = decodeJsonString(this.text.slice(keyStart, keyEnd));
      const previous = seen.get(key);
      if (previous !== undefined) {
        const at = lineColumn(this.text, previous);
        throw new JsonSyntaxError(
          keyStart,
          `duplicate property ${JSON.stringify(key)} (first at line ${at.line}, column ${at.column})`,
        );
      }
      seen.set(key, keyStart);
      this.skipWhitespace();
      if (this.text[this.pos] !== ":") throw this.unexpected('expected ":" after the property name');
      this.pos++;
      this.skipWhitespace();
      members.push({ key, keyStart, keyEnd, value: this.value(depth) });
      this.skipWhitespace();
      if (this.text[this.pos] === "}") {
        this.pos++;
        return { type: "object", start, end: this.pos, members };
      }
      if (this.text[this.pos] !== ",") throw this.unexpected('expected "," or "}" after a property');
      const comma = this.pos++;
      this.skipWhitespace();
      if (this.text[this.pos] === "}") throw new JsonSyntaxError(comma, 'trailing comma before "}"');
    }
  }

  private array(depth: number): JsonArrayNode {
    const start = this.enter(depth);
    const items: JsonNode[] = [];
    this.skipWhitespace();
    if (this.text[this.pos] === "]") {
      this.pos++;
      return { type: "array", start, end: this.pos, items };
    }
    for (;;) {
      items.push(this.value(depth));
      this.skipWhitespace();
      if (this.text[this.pos] === "]") {
        this.pos++;
        return { type: "array", start, end: this.pos, items };
      }
      if (this.text[this.pos] !== ",") throw this.unexpected('expected "," or "]" after an array item');
      const comma = this.pos++;
      this.skipWhitespace();
      if (this.text[this.pos] === "]") throw new JsonSyntaxError(comma, 'trailing comma before "]"');
    }
  }

  private enter(depth: number): number {
    if (depth > MAX_JSON_DEPTH) {
      throw new JsonSyntaxError(this.pos, `nested more than ${MAX_JSON_DEPTH} levels deep`);
    }
    return this.pos++;
  }

  private string(): void {
    const start = this.pos++;
    const text = this.text;
    for (;;) {
      if (this.pos >= text.length) throw new JsonSyntaxError(start, "unterminated string");
      const c = text.charCodeAt(this.pos);
      if (c === 0x22) {
        this.pos++;
        return;
      }
      if (c === 0x5c) {
        const escape = text[this.pos + 1];
        if (escape === undefined) throw new JsonSyntaxError(start, "unterminated string");
        if ('"\\/bfnrt'.includes(escape)) {
          this.pos += 2;
        } else if (escape === "u" && HEX4.test(text.slice(this.pos + 2, this.pos + 6))) {
          this.pos += 6;
        } else {
          throw new JsonSyntaxError(
            this.pos,
            escape === "u"
              ? 'invalid "\\u" escape: expected four hex digits'
              : `invalid escape "\\${escape}"`,
          );
        }
        continue;
      }
      if (c < 0x20) {
        throw new JsonSyntaxError(
          this.pos,
          `${codePoint(c)} must be escaped inside a string${c === 0x0a || c === 0x0d ? " (a string cannot span lines)" : ""}`,
        );
      }
      this.pos++;
    }
  }

  private number(): JsonScalarNode {
    const start = this.pos;
    const c = this.text[start] ?? "";
    if (c !== "-" && !(c >= "0" && c <= "9")) throw this.unexpected("expected a value");
    NUMBER.lastIndex = start;
    const match = NUMBER.exec(this.text);
    const end = match ? start + match[0].length : start;
    const next = this.text[end] ?? "";
    if (!match || /[0-9.eE+-]/.test(next)) throw new JsonSyntaxError(start, "invalid number");
    this.pos = end;
    return { type: "number", start, end };
  }

  private literal(word: string, type: "boolean" | "null"): JsonScalarNode {
    const start = this.pos;
    WORD.lastIndex = start;
    if (WORD.exec(this.text)?.[0] !== word) throw this.unexpected("expected a value");
    this.pos += word.length;
    return { type, start, end: this.pos };
  }

  private skipWhitespace(): void {
    const text = this.text;
    while (this.pos < text.length) {
      const c = text.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return;
      this.pos++;
    }
  }

  private unexpected(expected: string): JsonSyntaxError {
    const text = this.text;
    const at = this.pos;
    if (at >= text.length) return new JsonSyntaxError(at, `${expected}, found the end of the file`);
    if (text.startsWith("//", at) || text.startsWith("/*", at)) {
      return new JsonSyntaxError(at, "comments are not allowed: this file is strict JSON, not JSONC");
    }
    if (text[at] === "'")
      return new JsonSyntaxError(at, "strings must be in double quotes, not single quotes");
    WORD.lastIndex = at;
    const word = WORD.exec(text)?.[0];
    if (word !== undefined) {
      const shown = word.length > 24 ? `${word.slice(0, 24)}…` : word;
      return new JsonSyntaxError(at, `${expected}, found \`${shown}\``);
    }
    const c = text.codePointAt(at) ?? 0;
    const shown = c >= 0x21 && c <= 0x7e ? `"${String.fromCharCode(c)}"` : codePoint(c);
    return new JsonSyntaxError(at, `${expected}, found ${shown}`);
  }
}

function codePoint(c: number): string {
  return `U+${c.toString(16).toUpperCase().padStart(4, "0")}`;
}

/**
 * `.env` files in and out (`latchkey env import FILE`, `latchkey env export --format dotenv|json|shell`).
 *
 * The reading side follows the de-facto format of motdotla/dotenv (its `LINE` regex in lib/main.js) and dotenvx,
 * with one principle on top: a file that does not say clearly what it means is refused with its line and
 * column, never guessed at, because a silently dropped or silently altered secret is worse than an error.
 * Error messages never quote the file's text: any of it may be a secret.
 */
import { LatchkeyError } from "./errors.js";

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Values written bare: no whitespace, quotes, `#`, `$` or backslash, so every dotenv dialect reads them alike.
const BARE_VALUE = /^[A-Za-z0-9_.,:/@%+=-]+$/;
// Characters a single-quoted value cannot hold: `'` ends it, and line-break normalisation would turn a CR into LF.
const NOT_SINGLE_QUOTABLE = /['\r\n]/;
const DOUBLE_QUOTED_SPECIAL = /[\\"$\n\r]/g;

/** True when `name` can be an environment variable name in every POSIX shell: `[A-Za-z_][A-Za-z0-9_]*`. */
export function isEnvVariableName(name: string): boolean {
  return NAME.test(name);
}

function isBlank(c: string | undefined): boolean {
  return c === " " || c === "\t";
}

function isNameStart(c: string | undefined): boolean {
  return c !== undefined && ((c >= "A" && c <= "Z") || (c >= "a" && c <= "z") || c === "_");
}

function isNameChar(c: string | undefined): boolean {
  return isNameStart(c) || (c !== undefined && c >= "0" && c <= "9");
}

function decodeEscape(c: string | undefined): string | undefined {
  switch (c) {
    case "n":
      return "\n";
    case "r":
      return "\r";
    case "t":
      return "\t";
    case '"':
    case "\\":
    case "$":
      return c;
    default:
      return undefined;
  }
}

const QUOTE_NAMES: Record<string, string> = {
  "'": "single-quoted",
  '"': "double-quoted",
  "`": "backtick-quoted",
};

/**
 * Parses the text of a `.env` file into `[name, value]` pairs.
 *
 * Syntax: blank lines; `#` comment lines; an optional `export ` prefix; `NAME=value` with optional spaces or
 * tabs around `=`; names `[A-Za-z_][A-Za-z0-9_]*`. Values are one of:
 * - unquoted: the rest of the line, leading and trailing spaces and tabs removed; a `#` preceded by a space or
 *   tab starts a comment, any other `#` is part of the value; backslashes and quotes inside are literal;
 * - `'single-quoted'` or `` `backtick-quoted` ``: literal, no escapes, may span lines;
 * - `"double-quoted"`: may span lines; `\n`, `\r`, `\t`, `\"`, `\\` and `\$` are decoded, any other backslash
 *   is kept as written (as dotenv does, so `"C:\dir"` stays `C:\dir`).
 * After a closing quote only spaces, tabs and a `#` comment may follow. CRLF and lone CR count as line breaks,
 * also inside quoted values (as in dotenv), so a value holding a CR must write it as `\r` in double quotes.
 * A leading byte-order mark is ignored. `$NAME` is never expanded.
 *
 * When a name repeats, the last value wins and the name keeps the position of its first occurrence: the order
 * a dotenv result object has, and the one a reader of the file sees first.
 *
 * Deliberate differences from motdotla/dotenv, all of which it accepts silently with a surprising result:
 * - A line that is not blank, a comment or an assignment (`KEY`, `KEY value`, YAML-style `KEY: value`) is an
 *   error; dotenv skips it. So is an unclosed quote (dotenv keeps the value with the stray quote in it) and
 *   text after a closing quote (`KEY="a" b`; dotenv re-reads the line as an unquoted value, quotes included).
 * - Names with `.` or `-` (dotenv allows `[\w.-]+`) are errors: no POSIX shell can export them.
 * - `KEY=abc#def` is `abc#def` and `KEY=#fff` is `#fff`; dotenv cuts both at the `#`.
 * - In double quotes, `\t`, `\"`, `\\` and `\$` are decoded as well (dotenvx decodes `\t`; dotenv keeps all
 *   four as written). In single quotes a backslash is literal and the next `'` closes the value, so
 *   `'it\'s'` is an error rather than dotenv's `it\'s` or dotenvx's `it's`.
 * - Only spaces and tabs count as blanks; dotenv trims all Unicode whitespace from values.
 * - A NUL character anywhere is an error: no environment variable can hold one.
 *
 * @param source The file's name, used in error messages.
 * @throws LatchkeyError `LK_DOTENV_INVALID`, naming the line, the column and the problem, never the value.
 */
export function parseDotenv(text: string, source?: string): Array<[key: string, value: string]> {
  const input = (text.startsWith("\uFEFF") ? text.slice(1) : text).replace(/\r\n?/g, "\n");
  const values = new Map<string, string>();
  let pos = 0;

  // Line and column are only worked out on failure, so the happy path tracks no positions.
  const invalid = (problem: string, at: number): LatchkeyError => {
    const lineStart = input.lastIndexOf("\n", at - 1) + 1;
    let line = 1;
    for (let i = input.indexOf("\n"); i !== -1 && i < at; i = input.indexOf("\n", i + 1)) line++;
    // Columns count code points, as editors do, not UTF-16 units.
    const column = Array.from(input.slice(lineStart, at)).length + 1;
    return new LatchkeyError("LK_DOTENV_INVALID", {
      message: `${source ?? "The .env input"}, line ${line}, column ${column}: ${problem}.`,
      details: { ...(source === undefined ? {} : { source }), line, column },
    });
  };
  const skipBlanks = (): void => {
    while (isBlank(input[pos])) pos++;
  };
  const skipLine = (): void => {
    const end = input.indexOf("\n", pos);
    pos = end === -1 ? input.length : end + 1;
  };
  const endOfQuotedValue = (): void => {
    skipBlanks();
    const c = input[pos];
    if (c === "#" || c === "\n" || c === undefined) skipLine();
    else throw invalid("unexpected text after the closing quote (put a `#` before a comment)", pos);
  };

  const nul = input.indexOf("\0");
  if (nul !== -1) throw invalid("a NUL character, which no environment variable can hold", nul);

  while (pos < input.length) {
    skipBlanks();
    const first = input[pos];
    if (first === undefined) break;
    if (first === "\n" || first === "#") {
      skipLine();
      continue;
    }

    // `export` is a prefix only when something other than `=` follows it; `export=1` names a variable.
    if (input.startsWith("export", pos) && isBlank(input[pos + 6])) {
      let after = pos + 6;
      while (isBlank(input[after])) after++;
      const next = input[after];
      if (next !== "=" && next !== "\n" && next !== undefined) pos = after;
    }

    const nameStart = pos;
    if (!isNameStart(input[pos])) throw invalid("a variable name must start with a letter or `_`", pos);
    while (isNameChar(input[pos])) pos++;
    const name = input.slice(nameStart, pos);
    const nameEnd = pos;
    skipBlanks();
    const separator = input[pos];
    if (separator !== "=") {
      const glued = pos === nameEnd && separator !== undefined && separator !== "\n" && separator !== ":";
      throw invalid(
        glued
          ? "a variable name may contain only letters, digits and `_`"
          : "expected `=` after the variable name",
        pos,
      );
    }
    pos++;
    skipBlanks();

    const quote = input[pos];
    let value: string;
    if (quote === "'" || quote === "`") {
      const close = input.indexOf(quote, pos + 1);
      if (close === -1)
        throw invalid(`the ${QUOTE_NAMES[quote]} value that starts here is never closed`, pos);
      value = input.slice(pos + 1, close);
      pos = close + 1;
      endOfQuotedValue();
    } else if (quote === '"') {
      const open = pos;
      pos++;
      value = "";
      let chunk = pos;
      for (;;) {
        const c = input[pos];
        if (c === undefined) throw invalid("the double-quoted value that starts here is never closed", open);
        if (c === '"') break;
        if (c === "\\") {
          const decoded = decodeEscape(input[pos + 1]);
          if (decoded !== undefined) {
            value += input.slice(chunk, pos) + decoded;
            pos += 2;
            chunk = pos;
            continue;
          }
          // Kept as written; stepping over the next character too keeps it from being read as a closing quote
          // (it cannot be one: `\"` was decoded above) and leaves a final lone backslash to the check above.
          if (input[pos + 1] !== undefined) pos++;
        }
        pos++;
      }
      value += input.slice(chunk, pos);
      pos++;
      endOfQuotedValue();
    } else {
      const start = pos;
      const lineEnd = input.indexOf("\n", pos);
      let end = lineEnd === -1 ? input.length : lineEnd;
      for (let i = start; i < end; i++) {
        if (input[i] === "#" && isBlank(input[i - 1])) {
          end = i;
          break;
        }
      }
      while (end > start && isBlank(input[end - 1])) end--;
      value = input.slice(start, end);
      skipLine();
    }
    values.set(name, value);
  }
  return [...values];
}

function checkVariable(name: string, value: string): void {
  if (!NAME.test(name)) {
    throw new LatchkeyError("LK_ENV_KEY_INVALID", {
      message: `${JSON.stringify(name)} is not a valid environment variable name: use letters, digits and \`_\`, not starting with a digit.`,
      details: { name },
    });
  }
  if (value.includes("\0")) {
    throw new LatchkeyError("LK_ENV_VALUE_INVALID", {
      message: `The value of ${name} contains a NUL character, which no environment variable can hold.`,
      details: { name },
    });
  }
}

function dotenvValue(value: string): string {
  if (value === "" || BARE_VALUE.test(value)) return value;
  if (!NOT_SINGLE_QUOTABLE.test(value)) return `'${value}'`;
  return `"${value.replace(DOUBLE_QUOTED_SPECIAL, (c) => (c === "\n" ? "\\n" : c === "\r" ? "\\r" : `\\${c}`))}"`;
}

/**
 * Writes entries as a `.env` file, one `NAME=value` line each, such that `parseDotenv` gives back exactly the
 * same entries (the last value wins if a name repeats). Quoting is the most widely understood form that is
 * exact: bare when the value is only letters, digits and `_.,:/@%+=-`; single quotes when it has no `'` and no
 * line break; otherwise double quotes with `\\`, `\"`, `\$`, `\n` and `\r` escaped. motdotla/dotenv reads all
 * of these the same except a double-quoted value containing `\`, `"` or `$`, where it keeps the escape
 * backslashes (python-dotenv, godotenv and docker compose decode them).
 *
 * @throws LatchkeyError `LK_ENV_KEY_INVALID` for a name that is not `[A-Za-z_][A-Za-z0-9_]*`,
 *   `LK_ENV_VALUE_INVALID` for a value containing NUL.
 */
export function formatDotenv(entries: Iterable<readonly [string, string]>): string {
  let out = "";
  for (const [name, value] of entries) {
    checkVariable(name, value);
    out += `${name}=${dotenvValue(value)}\n`;
  }
  return out;
}

/**
 * Writes entries as POSIX shell `export NAME='value'` lines, safe to `eval` or source in sh, dash, bash and
 * zsh whatever the value: inside single quotes nothing is special except `'` itself, written `'\''`, and
 * newlines stay literal. Names are validated, which is what keeps a name from injecting code.
 *
 * @throws LatchkeyError `LK_ENV_KEY_INVALID` for an invalid name, `LK_ENV_VALUE_INVALID` for a value containing NUL.
 */
export function formatShell(entries: Iterable<readonly [string, string]>): string {
  let out = "";
  for (const [name, value] of entries) {
    checkVariable(name, value);
    out += `export ${name}='${value.replaceAll("'", "'\\''")}'\n`;
  }
  return out;
}

/**
 * Writes entries as one JSON object (2-space indent, trailing newline); a repeated name keeps its last value
 * at its first position. Names are validated as for the other formats so every export holds the same set.
 *
 * @throws LatchkeyError `LK_ENV_KEY_INVALID` for an invalid name, `LK_ENV_VALUE_INVALID` for a value containing NUL.
 */
export function formatJson(entries: Iterable<readonly [string, string]>): string {
  const checked: Array<readonly [string, string]> = [];
  for (const [name, value] of entries) {
    checkVariable(name, value);
    checked.push([name, value]);
  }
  // Object.fromEntries defines own properties, so a variable named `__proto__` stays a plain entry.
  return `${JSON.stringify(Object.fromEntries(checked), null, 2)}\n`;
}

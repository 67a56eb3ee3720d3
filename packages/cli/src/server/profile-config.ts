// Recording `server = "URL"` in `[profiles.P]` of config.toml after a login. The file is the user's: comments,
// order and every other table stay as they were, so the edit is a line edit checked by parsing the result, not a
// re-serialisation of the parsed document.
import { LatchkeyError } from "@latchkey/core";
import type { Context } from "../context.js";
import { withFileLock } from "../fs/lock.js";
import { ensurePrivateDir, readFileSafe, writeFileAtomic } from "../fs/safe-file.js";
import { decodeJsonString } from "../project/json-edit.js";

/** A TOML table header line: `[a.b]` with optional quoted parts and a trailing comment. */
const HEADER = /^\s*\[(?!\[)\s*(.+?)\s*\]\s*(#.*)?$/;
const SERVER_LINE = /^(\s*)server\s*=/;

function headerKey(parts: string): string[] | null {
  const out: string[] = [];
  const pattern = /\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*(\.|$)/y;
  let match: RegExpExecArray | null;
  let last = 0;
  while (last < parts.length && (match = pattern.exec(parts)) !== null) {
    out.push(match[1] !== undefined ? decodeJsonString(`"${match[1]}"`) : (match[2] ?? match[3]!));
    last = pattern.lastIndex;
  }
  return last === parts.length ? out : null;
}

function isProfileHeader(line: string, profile: string): boolean {
  const match = HEADER.exec(line);
  if (!match) return false;
  const key = headerKey(match[1]!);
  return key !== null && key.length === 2 && key[0] === "profiles" && key[1] === profile;
}

function tomlBareOrQuoted(name: string): string {
  return /^[A-Za-z0-9_-]+$/.test(name) ? name : JSON.stringify(name);
}

/**
 * The text of config.toml with `server = "URL"` set in `[profiles.<profile>]` (replaced when present, added under
 * the header otherwise, the table appended when absent). Exported for tests.
 */
export function withProfileServer(text: string, profile: string, server: string): string {
  const assignment = `server = ${JSON.stringify(server)}`;
  const lines = text === "" ? [] : text.split("\n");
  const start = lines.findIndex((line) => isProfileHeader(line, profile));
  if (start === -1) {
    const body = text === "" || text.endsWith("\n") ? text : `${text}\n`;
    const gap = body === "" || body.endsWith("\n\n") ? "" : "\n";
    return `${body}${gap}[profiles.${tomlBareOrQuoted(profile)}]\n${assignment}\n`;
  }
  let end = lines.length;
  for (let i = start + 1; i < lines.length; i++) {
    if (/^\s*\[/.test(lines[i]!)) {
      end = i;
      break;
    }
  }
  for (let i = start + 1; i < end; i++) {
    const match = SERVER_LINE.exec(lines[i]!);
    if (match) {
      lines[i] = `${match[1]}${assignment}`;
      return lines.join("\n");
    }
  }
  lines.splice(start + 1, 0, assignment);
  return lines.join("\n");
}

/**
 * Records `server` in the profile's table of config.toml, under the file's lock. The result is parsed back: a
 * file the line edit cannot handle (the profile written as an inline table, say) is left untouched and reported.
 */
export async function recordProfileServer(ctx: Context, profile: string, server: string): Promise<void> {
  const file = ctx.paths.config;
  await ensurePrivateDir(ctx.paths.home);
  await withFileLock(file, async (signal) => {
    const bytes = await readFileSafe(file);
    const text = bytes === null ? "" : Buffer.from(bytes).toString("utf8");
    const next = withProfileServer(text, profile, server);
    if (next === text) return;
    const { parse } = await import("smol-toml");
    let recorded: unknown;
    try {
      const doc = parse(next) as { profiles?: Record<string, { server?: unknown }> };
      recorded = doc.profiles?.[profile]?.server;
    } catch {
      recorded = undefined;
    }
    if (recorded !== server) {
      throw new LatchkeyError("LK_CONFIG_INVALID", {
        message: `Could not record the server in [profiles.${profile}] of ${file}: the file's layout is not one this edit understands.`,
        hint: `Add \`server = ${JSON.stringify(server)}\` to [profiles.${profile}] in ${file} yourself.`,
        details: { path: file },
      });
    }
    signal.throwIfAborted();
    await writeFileAtomic(file, next);
  });
}

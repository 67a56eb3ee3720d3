// What a project's yarn 2+ configuration does with the variables `latchkey exec` sets. yarn 4 (checked against
// 4.18.1) parses .yarnrc.yml with js-yaml's FAILSAFE schema (every scalar a string; a file starting with a
// `# yarn lockfile v1` comment goes to its old lockfile parser instead), and only then replaces `${VAR}` in the
// string settings. So the check reads the parsed values, not the lines: `"\x24{VAR}"`, `"\u0024{VAR}"`, a
// double-quoted string continued across lines with `\`, and a `#${VAR}` line inside a block scalar all expand
// there, and none of them shows `${VAR}` on a line as written.
//
// yarn 4 also reads `.env.yarn` in the working directory (its injectEnvironmentFiles default), expanding `${VAR}` in
// it, and the variables it defines are what `${NAME}` in .yarnrc.yml then expands to: a file saying
// `NAME=${LATCHKEY_TOKEN_…}` hands the token to any setting that says `${NAME}`.
import type { Context } from "../context.js";
import { sameVariable } from "../env-names.js";
import { envReferences } from "./handoff-npmrc.js";
import { nerfDart } from "./nerf-dart.js";
import type { NerfDart } from "./types.js";

/** Why a .yarnrc.yml may not be run with the tokens, and where. */
export type YarnrcFinding =
  /** `variable` is used other than as `registry`'s own npmAuthToken. */
  | {
      readonly kind: "rerouted";
      readonly line: number;
      readonly variable: string;
      readonly registry: NerfDart;
    }
  /** The file is not YAML yarn and this check would read alike; `reason` says what. */
  | { readonly kind: "unreadable"; readonly line: number; readonly reason: string }
  /** A setting that makes yarn read another file this check does not. */
  | { readonly kind: "loads-file"; readonly line: number; readonly key: string };

/** The variables `latchkey exec` sets, each with the registry whose token it carries. */
export type HandedVariables = ReadonlyMap<string, NerfDart>;

const LEGACY_SYNTAX = /^(#.*(\r?\n))*?#\s+yarn\s+lockfile\s+v1\r?\n/i;

// Aliases may repeat a subtree many times over; a file that big is no configuration.
const MAX_VISITS = 100_000;

function lineOf(text: string, offset: number): number {
  return text.slice(0, offset).split("\n").length;
}

/** The registry a key of npmRegistries names (`"//host/path/"`, `https://host/path/`), or null. */
function registryKey(key: string): NerfDart | null {
  if (!/^(?:https?:)?\/\//.test(key)) return null;
  try {
    return nerfDart(key);
  } catch {
    return null;
  }
}

/**
 * The first reason `text` (a .yarnrc.yml) may not run with `handed` set, or null. A handed variable may appear
 * only as the whole value of `npmRegistries["<its registry>"].npmAuthToken` (what `latchkey setup` documents),
 * anywhere else (another registry, a scope, a top-level npmAuthToken, a URL, a key) it is `rerouted`. A file yarn
 * would read otherwise than the `yaml` parser here (errors, warnings, unknown tags, duplicate keys, which yarn
 * resolves silently, the old lockfile syntax) is `unreadable`, and `injectEnvironmentFiles` is `loads-file`. Last,
 * every mention of a handed variable's name in the raw text must be one of the accepted values, so that a
 * disagreement between the two YAML parsers cannot hide one either.
 */
export async function yarnrcFinding(
  text: string,
  handed: HandedVariables,
  os: Context["platform"]["os"],
): Promise<YarnrcFinding | null> {
  const carried = (name: string): [string, NerfDart] | undefined =>
    [...handed].find(([variable]) => sameVariable(variable, name, os));
  if (LEGACY_SYNTAX.test(text)) {
    return {
      kind: "unreadable",
      line: 1,
      reason: "yarn reads a file starting so in its old lockfile syntax",
    };
  }
  const { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument } = await import("yaml");
  const lines = new LineCounter();
  const doc = parseDocument(text, { schema: "failsafe", lineCounter: lines, prettyErrors: false });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem !== undefined) {
    return { kind: "unreadable", line: lines.linePos(problem.pos[0]).line, reason: problem.message };
  }

  // How many accepted values name each variable on each line (`line:variable`).
  const accepted = new Map<string, number>();
  let found: YarnrcFinding | null = null;
  let visits = 0;
  // `via` is the line of the alias a node is reached through: where the value is used, which is what to report.
  const visit = (node: unknown, path: readonly string[] | null, active: Set<unknown>, via?: number): void => {
    if (found !== null || node === null || node === undefined) return;
    if (++visits > MAX_VISITS) {
      found = { kind: "unreadable", line: 1, reason: "its aliases expand to too many values" };
      return;
    }
    if (isAlias(node)) {
      const target = node.resolve(doc);
      if (active.has(target)) return;
      active.add(target);
      visit(target, path, active, via ?? lines.linePos(node.range?.[0] ?? 0).line);
      active.delete(target);
      return;
    }
    const line = (): number => via ?? lines.linePos((node as { range?: [number] }).range?.[0] ?? 0).line;
    if (isScalar(node)) {
      if (node.value === null) return;
      if (typeof node.value !== "string") {
        found = { kind: "unreadable", line: line(), reason: "a value is not a string (an explicit tag?)" };
        return;
      }
      const value = node.value;
      for (const name of envReferences(value)) {
        const hit = carried(name);
        if (hit === undefined) continue;
        const [variable, registry] = hit;
        const own =
          path?.length === 3 &&
          path[0] === "npmRegistries" &&
          path[2] === "npmAuthToken" &&
          registryKey(path[1]!) === registry &&
          value === `\${${name}}`;
        if (!own) {
          found = { kind: "rerouted", line: line(), variable, registry };
          return;
        }
        const at = `${line()}:${variable}`;
        accepted.set(at, (accepted.get(at) ?? 0) + 1);
      }
      return;
    }
    if (isMap(node)) {
      for (const pair of node.items) {
        visit(pair.key, null, active, via);
        const keyNode = isScalar(pair.key) ? pair.key : null;
        const key = typeof keyNode?.value === "string" ? keyNode.value : null;
        if (path?.length === 0 && key === "injectEnvironmentFiles") {
          found = { kind: "loads-file", line: lines.linePos(keyNode?.range?.[0] ?? 0).line, key };
        }
        visit(pair.value, path !== null && key !== null ? [...path, key] : null, active, via);
      }
      return;
    }
    if (isSeq(node)) for (const item of node.items) visit(item, null, active, via);
  };
  visit(doc.contents, [], new Set());
  if (found !== null) return found;

  for (const [variable, registry] of handed) {
    const name = new RegExp(variable.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&"), "gi");
    for (const match of text.matchAll(name)) {
      const line = lineOf(text, match.index);
      const left = accepted.get(`${line}:${variable}`) ?? 0;
      if (left === 0) return { kind: "rerouted", line, variable, registry };
      accepted.set(`${line}:${variable}`, left - 1);
    }
  }
  return null;
}

/**
 * The first line of an env file yarn injects (`.env.yarn`) that names a handed variable, in any case and any form,
 * or null: any variable it defines from one carries that token to whatever setting names it.
 */
export function envFileMention(
  text: string,
  handed: HandedVariables,
): { line: number; variable: string } | null {
  const lines = text.split("\n");
  for (const [variable] of handed) {
    const index = lines.findIndex((line) => line.toUpperCase().includes(variable.toUpperCase()));
    if (index !== -1) return { line: index + 1, variable };
  }
  return null;
}

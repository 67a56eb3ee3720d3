/**
 * Vault ids come from a committed file or the environment and end up joined into `vaults/<id>.enc` and keychain
 * account names, so they are checked against a whitelist before any of that (DESIGN.md, "Project identity").
 */
import { LatchkeyError } from "./errors.js";
import { canonicalVaultId } from "./sync-wire.js";

/** The longest accepted vault id. Latchkey's own ids (UUID v4) are 36 characters. */
export const MAX_VAULT_ID_LENGTH = 128;

// A whitelist rather than a list of dangers: nothing outside it can be a separator, a relative segment, a drive,
// a stream (`a:b`), a glob or a shell metacharacter on any platform. The first character excludes a leading
// dot (hidden file) and a leading dash (read as an option by tools handed the path).
const VAULT_ID = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
const ID_CHARACTER = /[A-Za-z0-9_-]/;
// Windows opens these devices whatever the extension, so `vaults/CON.enc` would be the console.
const WINDOWS_DEVICE = /^(?:CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])$/i;

/**
 * Says why `id` is not a safe vault id, or returns undefined when it is one: 1 to 128 ASCII letters, digits,
 * `-` or `_`, starting with a letter or digit, and not a Windows device name. The specific dangers (empty,
 * control characters, `/`, `\`, `..`, a leading `~` or `.`, a drive prefix) are named before the general rule.
 */
export function vaultIdProblem(id: string): string | undefined {
  if (typeof id !== "string") return `it is a ${typeof id}, not a string`;
  if (id === "") return "it is empty";
  const control = [...id].find(isControl);
  if (control !== undefined) return `it contains the control character ${codePoint(control)}`;
  if (id.includes("..")) return 'it contains ".."';
  if (id.includes("/")) return 'it contains "/"';
  if (id.includes("\\")) return 'it contains "\\"';
  if (id.startsWith("~")) return 'it starts with "~", which shells expand to a home directory';
  if (/^[A-Za-z]:/.test(id)) return `it starts with the drive prefix "${id.slice(0, 2)}"`;
  if (id.startsWith(".")) return 'it starts with "."';
  if (id.length > MAX_VAULT_ID_LENGTH) {
    return `it is ${id.length} characters long, more than ${MAX_VAULT_ID_LENGTH}`;
  }
  if (!VAULT_ID.test(id)) {
    const first = [...id][0] ?? "";
    if (!/[A-Za-z0-9]/.test(first)) return `it starts with ${describe(first)}, not a letter or digit`;
    const bad = [...id].find((c) => !ID_CHARACTER.test(c)) ?? "";
    return `it contains ${describe(bad)}; only letters, digits, "-" and "_" are allowed`;
  }
  if (WINDOWS_DEVICE.test(id)) return `"${id}" is a reserved device name on Windows`;
  return undefined;
}

/**
 * Returns `id` in its one spelling (core's canonicalVaultId: lower case) when it is a safe vault id (see
 * `vaultIdProblem`), else throws LK_VAULT_ID_INVALID naming `source` (e.g. "latchkey.json at
 * /repo/latchkey.json" or "LATCHKEY_VAULT_ID") and the cause. An id spelled in upper case on one machine and in
 * lower case on another is one vault: one file, one keystore account, one associated data, one server row.
 */
export function validateVaultId(id: string, source: string): string {
  const problem = vaultIdProblem(id);
  if (problem === undefined) return canonicalVaultId(id);
  throw new LatchkeyError("LK_VAULT_ID_INVALID", {
    message: `Invalid vault id from ${source}: ${problem}.`,
    details: { source, reason: problem },
  });
}

/** C0, DEL and C1. */
function isControl(char: string): boolean {
  const c = char.codePointAt(0) ?? 0;
  return c <= 0x1f || (c >= 0x7f && c <= 0x9f);
}

function describe(char: string): string {
  return /^[\x21-\x7e]$/.test(char) ? `"${char}"` : codePoint(char);
}

function codePoint(char: string): string {
  return `U+${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
}

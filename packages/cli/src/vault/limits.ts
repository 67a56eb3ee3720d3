/**
 * How large a vault may grow. The limits are documented (README, "Project secrets") and the same on every
 * machine, so a vault one machine accepts can be pushed, pulled and used on any other: the vault limit is what
 * a push carries (core's MAX_VAULT_DOCUMENT_BYTES, which the server's limit on a pushed blob has room for).
 */
import { LatchkeyError, MAX_VAULT_DOCUMENT_BYTES } from "@latchkey/core";
import { LINUX_MAX_ARG_STRLEN } from "../run/exec-limits.js";
import type { VaultDocument } from "./vault-store.js";

/** The largest value of one secret, in UTF-8 bytes. */
export const MAX_VALUE_BYTES = 1024 * 1024;
/** The largest environment: the UTF-8 bytes of its names and values together. */
export const MAX_ENVIRONMENT_BYTES = 2 * 1024 * 1024;
/** The largest vault: the UTF-8 bytes of its JSON document, every environment included. */
export const MAX_VAULT_BYTES = MAX_VAULT_DOCUMENT_BYTES;

const MiB = 1024 * 1024;
const format = (n: number): string => n.toLocaleString("en-US");
const mib = (n: number): string => `${n / MiB} MiB`;

/** When the check runs: the message says what did not happen. */
export type SizeCheckPoint = "store" | "push";

const outcome = (point: SizeCheckPoint): string =>
  point === "store" ? "Nothing was stored." : "Nothing was sent.";

/** The bytes one environment counts against MAX_ENVIRONMENT_BYTES. */
export function environmentBytes(values: Readonly<Record<string, string>>): number {
  let total = 0;
  for (const [key, value] of Object.entries(values))
    total += Buffer.byteLength(key) + Buffer.byteLength(value);
  return total;
}

/**
 * Refuses (LK_VAULT_TOO_LARGE) a document with a value, an environment or a whole that is over its limit,
 * naming it, its size and the limit. `storeEntries` calls it before sealing, `env push` before sending.
 */
export function checkVaultSize(document: VaultDocument, point: SizeCheckPoint): void {
  for (const [environment, values] of Object.entries(document)) {
    for (const [key, value] of Object.entries(values)) {
      const size = Buffer.byteLength(value);
      if (size > MAX_VALUE_BYTES) {
        throw new LatchkeyError("LK_VAULT_TOO_LARGE", {
          message: `${key} in ${environment} is ${format(size)} bytes; a secret may be at most ${mib(MAX_VALUE_BYTES)} (${format(MAX_VALUE_BYTES)} bytes). ${outcome(point)}`,
          details: { environment, key, bytes: size, limit: MAX_VALUE_BYTES },
        });
      }
    }
    const size = environmentBytes(values);
    if (size > MAX_ENVIRONMENT_BYTES) {
      throw new LatchkeyError("LK_VAULT_TOO_LARGE", {
        message: `The environment ${environment} would hold ${format(size)} bytes of names and values; an environment may hold at most ${mib(MAX_ENVIRONMENT_BYTES)} (${format(MAX_ENVIRONMENT_BYTES)} bytes). ${outcome(point)}`,
        details: { environment, bytes: size, limit: MAX_ENVIRONMENT_BYTES },
      });
    }
  }
  const size = Buffer.byteLength(JSON.stringify(document));
  if (size > MAX_VAULT_BYTES) {
    const largest = Object.entries(document)
      .map(([name, values]) => [name, environmentBytes(values)] as const)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([name, bytes]) => `${name} (${format(bytes)} bytes)`);
    throw new LatchkeyError("LK_VAULT_TOO_LARGE", {
      message: `The vault would be ${format(size)} bytes; a vault may be at most ${mib(MAX_VAULT_BYTES)} (${format(MAX_VAULT_BYTES)} bytes), what the server accepts in one push. The largest environments: ${largest.join(", ")}. ${outcome(point)}`,
      details: { bytes: size, limit: MAX_VAULT_BYTES },
    });
  }
}

/**
 * The size `key=value` takes as an environment variable when it is over what Linux passes to a program (so
 * `latchkey run` will refuse to put it there), else null. Checked on every platform: vaults travel.
 */
export function tooLargeForEnvironment(key: string, value: string): number | null {
  // Only a value whose UTF-16 length could reach the limit needs counting.
  if ((key.length + value.length) * 3 + 2 <= LINUX_MAX_ARG_STRLEN) return null;
  const size = Buffer.byteLength(key) + Buffer.byteLength(value) + 2;
  return size > LINUX_MAX_ARG_STRLEN ? size : null;
}

/** The warning `env set` and `env import` print for a value `run` cannot put in an environment. */
export function tooLargeWarning(key: string, size: number): string {
  return (
    `warning: ${key} takes ${format(size)} bytes as an environment variable, over the ${format(LINUX_MAX_ARG_STRLEN)} ` +
    `bytes Linux passes to a program: \`latchkey run\` will refuse to start with it in the environment. ` +
    `Use \`latchkey run --file ${key}\` (the program reads the file named by ${key}_FILE) or --mount NAME.`
  );
}

// A vault that lives on the server but cannot be opened on this machine: the machine is not paired for it. Every
// command that touches the project's vault says so (LK_VAULT_NOT_PAIRED, pointing at `latchkey pair`) instead of
// reading an empty vault, which led people to create a second, divergent one here and then meet a push conflict
// they could not resolve. `run` and `env get` reach this module too, so it loads no zod and asks no server: what
// it decides, it decides from latchkey.json and the keystore alone.
import { LatchkeyError } from "@latchkey/core";
import { readVaultSync, type VaultSyncRecord } from "../fast-readers.js";
import type { Keystore } from "../keystore/types.js";
import type { Project } from "../project/project.js";
import { vaultKeyAccount } from "../vault/vault-store.js";
import { readWrappingKey } from "../vault/wrapping-key.js";

/** How to pair, as every hint says it. */
export const PAIR_HINT_STEPS =
  "run `latchkey pair` here, then `latchkey env pair CODE` on a machine that has the vault";

/**
 * What latchkey.json records as last synced of `vaultId`'s copies (`vaultSync`), when the file is that vault's
 * (LATCHKEY_VAULT_ID may name another) and the field is valid; undefined otherwise.
 */
function recordedSync(project: Project | null, vaultId: string): VaultSyncRecord | undefined {
  if (project === null || project.config.vault !== vaultId) return undefined;
  const sync = readVaultSync(project.config.vaultSync);
  return sync.ok ? sync.value : undefined;
}

/**
 * Refuses a vault that was synced elsewhere and never reached this machine: latchkey.json records a synced
 * version of at least 1, so some checkout pushed or pulled it, and this machine's keystore has no key for it, so
 * no copy here can be opened and any new one would be a different vault under the same id. Only then is the
 * keystore read: a vault that was never synced costs nothing. Whether this machine's wrapping key would open the
 * server's copy cannot be known without asking the server, so a machine that has a wrapping key is told to pull
 * first (a paired machine's pull brings the vault); one with none cannot be paired, and is told to pair. A vault
 * that only organisations' copies record is fetched with the account's sharing key, not by pairing: the message
 * says to pull the organisation's copy (LK_ORG_VAULT_NOT_SYNCED).
 */
export async function refuseVaultSyncedElsewhere(
  keystore: Keystore,
  project: Project | null,
  vaultId: string,
): Promise<void> {
  const sync = recordedSync(project, vaultId);
  const version = sync?.personalVersion;
  const orgs = Object.entries(sync?.orgVersions ?? {}).filter(([, v]) => v >= 1);
  if ((version === undefined || version < 1) && orgs.length === 0) return;
  if ((await keystore.get(vaultKeyAccount(vaultId))) !== null) return;
  if (version === undefined || version < 1) {
    const [org, orgVersion] = orgs[0]!;
    throw new LatchkeyError("LK_ORG_VAULT_NOT_SYNCED", {
      message: `Vault ${vaultId} is shared with organisation ${org} (${project!.file} records version ${orgVersion} of its copy), and this machine has no copy of it: nothing here can be read. Nothing was changed.`,
      hint: `Fetch it with \`latchkey env pull --org ${org}\`.`,
      details: { vaultId, org, recordedVersion: orgVersion },
    });
  }
  const paired = (await readWrappingKey(keystore)) !== null;
  throw new LatchkeyError("LK_VAULT_NOT_PAIRED", {
    message: `Vault ${vaultId} was synced from another machine (${project!.file} records version ${version}), and this machine has no key for it: nothing here can open it. Nothing was changed.`,
    hint: paired
      ? `Fetch it with \`latchkey env pull\`. If the pull says LK_VAULT_NOT_PAIRED, this machine is not paired: ${PAIR_HINT_STEPS}, then pull.`
      : `Pair this machine first: ${PAIR_HINT_STEPS}; then \`latchkey env pull\`.`,
    details: { vaultId, recordedVersion: version },
  });
}

/** What {@link serverCopyNotPaired} says about the server's copy this machine could not open. */
export interface UnopenedServerCopy {
  readonly vaultId: string;
  readonly server: string;
  /** The server copy's version. */
  readonly version: number;
  /** The version this machine last synced of the vault, or null when it never did. */
  readonly syncedVersion: number | null;
  /** What the command did not do, said after the cause (e.g. "Nothing was written."). */
  readonly outcome: string;
}

/**
 * LK_VAULT_NOT_PAIRED for a server copy whose vault key no wrapping key of this machine opens. A machine that
 * synced the vault before was paired for it: another machine has since replaced its wrapping key (`env
 * rotate-key` re-wraps the server copies), and this one must pair again.
 */
export function serverCopyNotPaired(copy: UnopenedServerCopy): LatchkeyError {
  const before = copy.syncedVersion !== null;
  return new LatchkeyError("LK_VAULT_NOT_PAIRED", {
    message: before
      ? `This machine is no longer paired for vault ${copy.vaultId}: the server's copy (version ${copy.version}) has its key wrapped for another machine's wrapping key, though this machine synced version ${copy.syncedVersion} of it. Another machine has replaced its wrapping key (\`latchkey env rotate-key\`), which unpairs the others. ${copy.outcome}`
      : `This machine is not paired for vault ${copy.vaultId}: the server's copy (version ${copy.version}) has its key wrapped for another machine's wrapping key. ${copy.outcome}`,
    hint: before
      ? `Pair this machine again: ${PAIR_HINT_STEPS}, then \`latchkey env pull\`.`
      : `Pair this machine with one that has the vault: ${PAIR_HINT_STEPS}, then \`latchkey env pull\`.`,
    details: {
      vaultId: copy.vaultId,
      server: copy.server,
      version: copy.version,
      ...(copy.syncedVersion === null ? {} : { syncedVersion: copy.syncedVersion }),
    },
  });
}

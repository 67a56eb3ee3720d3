// A new vault key for an organisation's copy and its platform connections (docs/platforms.md, "Connections"): each
// connection's credential is sealed with the copy's vault key, so a share that seals the copy with a new key carries
// every credential opened with the old key and sealed again with the new one, under the same associated data, and
// the server swaps them in within the share's transaction (org/copy.ts sendShare lists the connections and sends
// them). The credentials are open on this machine only between the two seals.
import {
  fromBase64,
  platformCredentialContext,
  toBase64,
  type PlatformConnection,
  type PlatformCredentialsReseal,
} from "@latchkey/core";
import type { Context } from "../context.js";
import { openEnvelopeCli, sealEnvelopeSync } from "../crypto/native.js";

/** A copy's credentials re-sealed for its new key, and the names of the connections that go with it. */
export interface ResealedConnections {
  /** What the share sends (core platformCredentialsResealSchema). */
  readonly credentials: PlatformCredentialsReseal;
  /** Names of the connections whose credential was re-sealed. */
  readonly resealed: string[];
  /**
   * Names of the connections whose credential the old key did not open (already unreadable): the share drops them
   * (the server deletes them), since nobody could push with them any more.
   */
  readonly dropped: string[];
}

/**
 * Seals each of `connections`' credentials again: opened with `oldKey`, sealed with `newKey` under the same
 * platformCredentialContext(vaultId, connectionId); one the old key does not open is dropped.
 */
export async function resealConnections(
  ctx: Context,
  connections: readonly PlatformConnection[],
  copy: { vaultId: string; oldKey: Uint8Array; newKey: Uint8Array },
): Promise<ResealedConnections> {
  const credentials: PlatformCredentialsReseal = { resealed: [], dropped: [] };
  const resealed: string[] = [];
  const dropped: string[] = [];
  for (const connection of connections) {
    const context = platformCredentialContext(copy.vaultId, connection.id);
    let plaintext: Uint8Array;
    try {
      plaintext = await openEnvelopeCli(copy.oldKey, fromBase64(connection.sealedCredential), context);
    } catch {
      credentials.dropped.push(connection.id);
      dropped.push(connection.name);
      continue;
    }
    const sealed = sealEnvelopeSync(copy.newKey, plaintext, context, (n) => ctx.random.bytes(n));
    plaintext.fill(0);
    credentials.resealed.push({ id: connection.id, sealedCredential: toBase64(sealed) });
    resealed.push(connection.name);
  }
  return { credentials, resealed, dropped };
}

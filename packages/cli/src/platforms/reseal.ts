// A new vault key for an organisation's copy and its platform connections (docs/platforms.md, "Connections"): each
// connection's credential is sealed with the copy's vault key, so a share that seals the copy with a new key carries
// every credential opened with the old key and sealed again with the new one, under the same associated data, and
// the server swaps them in within the share's transaction (org/copy.ts sendShare lists the connections and sends
// them). The credentials are open on this machine only between the two seals.
import {
  LatchkeyError,
  fromBase64,
  isLatchkeyError,
  platformCredentialContext,
  splitEnvelope,
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
   * Names of the connections whose credential the old key did not open (its authentication failed: already
   * unreadable): the share drops them (the server deletes them), since nobody could push with them any more.
   */
  readonly dropped: string[];
}

/**
 * The sealed credential of `connection` as envelope bytes, once they are an envelope this CLI reads; LK_FORMAT_INVALID
 * naming the connection otherwise (bad base64, too short, another header: a newer format, say), which stops the
 * share: such a credential may be perfectly readable to another version, so it is not one to drop.
 */
function credentialEnvelope(connection: PlatformConnection, vaultId: string): Uint8Array {
  let envelope: Uint8Array;
  try {
    envelope = fromBase64(connection.sealedCredential);
    splitEnvelope(envelope);
  } catch (error) {
    throw new LatchkeyError("LK_FORMAT_INVALID", {
      message: `The sealed credential of platform connection ${connection.name} (${connection.platform}) of vault ${vaultId} is not an envelope this version of Latchkey reads (malformed, or of a newer format): the copy's credentials were not re-sealed and no connection was dropped. Nothing was sent.`,
      hint: `Update Latchkey and run the command again; if it still fails, \`latchkey env platforms disconnect ${connection.name}\` and connect it again, then run the command again.`,
      details: { vaultId, connection: connection.name },
      cause: error,
    });
  }
  return envelope;
}

/**
 * Seals each of `connections`' credentials again: opened with `oldKey`, sealed with `newKey` under the same
 * platformCredentialContext(vaultId, connectionId). One whose authentication fails with the old key (LK_DECRYPT_FAILED:
 * unreadable to anyone holding it) is dropped; any other failure, a credential that is not an envelope this CLI reads
 * included, stops it (the caller has proved `oldKey` is the copy's key: push.ts, rotate.ts).
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
    const envelope = credentialEnvelope(connection, copy.vaultId);
    let plaintext: Uint8Array;
    try {
      plaintext = await openEnvelopeCli(copy.oldKey, envelope, context);
    } catch (error) {
      if (!isLatchkeyError(error, "LK_DECRYPT_FAILED")) throw error;
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

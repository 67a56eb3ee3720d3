/**
 * A platform connection's sealed credential on the wire (docs/platforms.md, "Connections"), and the re-sealed
 * credentials a rotation of an organisation copy's vault key carries in its share. Apart from platforms-api.ts,
 * which imports the organisations' schemas, so that org-api.ts can take the share's member from here without the
 * two importing each other.
 */
import * as z from "zod/mini";
import { isCanonicalBase64 } from "../bytes.js";
import { isUuid } from "../uuid.js";
import { nested } from "./sync-api.js";

/** Longest sealed credential the server stores, in base64 characters (a token of a few KiB, sealed). */
export const MAX_SEALED_CREDENTIAL_LENGTH = 16 * 1024;

/** Most connections one vault copy may have, and so most credentials one rotation re-seals. */
export const MAX_PLATFORM_CONNECTIONS = 100;

/** A credential's envelope (AES-256-GCM with the copy's vault key), in standard base64, as `name`. */
export function sealedCredentialSchema(name = "sealedCredential") {
  return z
    .string(`"${name}" must be standard base64 of at most ${MAX_SEALED_CREDENTIAL_LENGTH} characters.`)
    .check(
      z.minLength(4, { abort: true }),
      z.maxLength(MAX_SEALED_CREDENTIAL_LENGTH, { abort: true }),
      z.refine(isCanonicalBase64),
    );
}

const connectionId = (name: string) =>
  z.string(`${name} must be a connection id (a UUID).`).check(z.refine(isUuid));

/**
 * `platformCredentials` of a share that seals the copy with a new vault key: every connection of the copy, each
 * credential opened with the old key and sealed again with the new one under the same
 * platformCredentialContext(vaultId, connectionId) (`resealed`), or, for a credential the rotating machine could not
 * open, its connection's id (`dropped`: the server deletes that connection). The server requires the ids of both
 * lists to be exactly the copy's connections, else 409 LK_PLATFORM_CONNECTIONS_CHANGED and nothing is written.
 */
export const platformCredentialsResealSchema = nested('"platformCredentials"', {
  resealed: z
    .array(
      nested('Each of "platformCredentials.resealed"', {
        id: connectionId('"id"'),
        sealedCredential: sealedCredentialSchema(),
      }),
      `"platformCredentials.resealed" must be an array.`,
    )
    .check(
      z.maxLength(
        MAX_PLATFORM_CONNECTIONS,
        `"platformCredentials.resealed" must hold at most ${MAX_PLATFORM_CONNECTIONS} connections.`,
      ),
    ),
  dropped: z
    .array(
      connectionId('Each of "platformCredentials.dropped"'),
      `"platformCredentials.dropped" must be an array.`,
    )
    .check(
      z.maxLength(
        MAX_PLATFORM_CONNECTIONS,
        `"platformCredentials.dropped" must hold at most ${MAX_PLATFORM_CONNECTIONS} connections.`,
      ),
    ),
}).check(
  z.refine((value) => {
    const ids = [...value.resealed.map((c) => c.id), ...value.dropped].map((id) => id.toLowerCase());
    return new Set(ids).size === ids.length;
  }, `"platformCredentials" must name each connection once.`),
);
/** The credentials a rotation re-sealed, and the connections it drops. */
export type PlatformCredentialsReseal = z.infer<typeof platformCredentialsResealSchema>;

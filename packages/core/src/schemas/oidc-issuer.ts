/**
 * What an OpenID Connect issuer publishes for those who verify its tokens (OpenID Connect Discovery 1.0, RFC 7517):
 * the discovery document and the JSON Web Key Set. The server reads a CI platform's (docs/ci.md) through these
 * before trusting any of it. Both are other parties' formats, so members this code does not read are allowed; the
 * ones it reads must have the right type. Messages never quote a value.
 */
import * as z from "zod/mini";

/** The members of an issuer's `/.well-known/openid-configuration` that a token verifier reads. */
export const oidcDiscoverySchema = z.looseObject({
  issuer: z.string({ error: "names no issuer (a string)" }),
  jwks_uri: z.string({ error: "names no jwks_uri (a string)" }),
});

/** An issuer's discovery document, as far as a token verifier reads it. */
export type OidcDiscovery = z.output<typeof oidcDiscoverySchema>;

/** One public key of a JWK Set: its type and, for selecting it by a token's header, its `kid` and `alg`. */
export const jsonWebKeySchema = z.looseObject({
  kty: z.string({ error: "holds a key with no kty (a string)" }),
  kid: z.optional(z.string({ error: "holds a key whose kid is not a string" })),
  alg: z.optional(z.string({ error: "holds a key whose alg is not a string" })),
  use: z.optional(z.string({ error: "holds a key whose use is not a string" })),
});

/** A JSON Web Key Set (RFC 7517 §5). */
export const jsonWebKeySetSchema = z.looseObject({
  keys: z.array(jsonWebKeySchema, { error: "holds no keys (an array)" }),
});

/** A JSON Web Key Set as the schema reads it. */
export type JsonWebKeySet = z.output<typeof jsonWebKeySetSchema>;

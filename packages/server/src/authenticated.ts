/**
 * Who a bearer token belongs to: the identity slice answers it (identity/tokens.ts), the API layer asks
 * (api/plugin.ts). Here rather than in either, so no slice imports another.
 */

/** The owner of a valid bearer token; authenticate answers null for a missing, malformed, expired or revoked one. */
export interface Authenticated {
  userId: string;
  email: string;
  clientId: string;
  /**
   * The OAuth grant the token was issued under: one sign-in of one machine (the session), kept through refreshes.
   * Step-up proofs are bound to it, so a proof minted in one session is worthless in another.
   */
  grantId: string;
  /** Seconds since the epoch. */
  expiresAt: number;
}

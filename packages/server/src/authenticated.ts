/**
 * Who a bearer token belongs to: the identity slice answers it (identity/tokens.ts), the sync routes ask. Here
 * rather than in either slice, so neither imports the other.
 */

/** The owner of a valid bearer token; authenticate answers null for a missing, malformed, expired or revoked one. */
export interface Authenticated {
  userId: string;
  email: string;
  clientId: string;
  /** Seconds since the epoch. */
  expiresAt: number;
}

/**
 * What a push writes into the head row of a vault copy, a user's (sync/) or an organisation's (orgs/): the shape
 * the shared versioned push (vault-copies.ts) hands to each slice's data access.
 */

/** What a push writes into a head row. */
export interface HeadWrite {
  encryptedBlob: string;
  /** The personal copy's wrapped key; an organisation's copy keeps its keys per member and ignores it. */
  wrappedKey: string;
  /** undefined keeps the stored schema (an insert stores null). */
  schemaJson: string | undefined;
  name: string;
  updatedAt: string;
}

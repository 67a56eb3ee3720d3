/**
 * The tables as Kysely sees them. Kept in step with migrations.ts by hand: a migration is written once and
 * never edited, this file describes the schema after the latest one.
 *
 * Timestamps are ISO-8601 UTC strings and ids are application-made UUIDs, so the same columns and the same
 * values work on SQLite and PostgreSQL without a dialect branch (and ISO strings sort by time).
 */
import type { Generated } from "kysely";
import type { ApiTables } from "../api/migration.js";
import type { CiTables } from "../ci/migration.js";
import type { IdentityTables } from "../identity/migration.js";
import type { OrgTables } from "../orgs/migration.js";
import type { OutboxTables } from "../outbox/migration.js";
import type { PairingTables } from "../pairing/migration.js";
import type { PlatformTables } from "../platforms/migration.js";
import type { SharingKeyTables } from "../sharing-keys/migration.js";
import type { SyncTables } from "../sync/migration.js";

/** An account. Credentials (password hash, TOTP) arrive with the accounts slice. */
export interface UsersTable {
  id: string;
  email: string;
  created_at: string;
}

/** One audited mutation. Never holds secret values: metadata is JSON chosen by the caller. */
export interface AuditEventsTable {
  id: string;
  user_id: string | null;
  action: string;
  vault_id: string | null;
  version: number | null;
  created_at: string;
  metadata: Generated<string>;
  /** How many times the event happened: above 1 only for a coalesced row (see coalesce_key). */
  count: Generated<number>;
  /** Set on events written coalesced (audit/data.ts insertAudit): one row per key, unique. */
  coalesce_key: string | null;
  /** The organisation the event belongs to; null for personal events. */
  org_id: Generated<string | null>;
  /** The environment the event concerns (metadata.environment, a CI pull's), for filtering; else null. */
  environment: Generated<string | null>;
}

/** Small facts about this database itself (e.g. when it was created), one row per key. */
export interface ServerMetaTable {
  key: string;
  value: string;
}

/** Every table of the server's database. */
export interface Database
  extends
    ApiTables,
    IdentityTables,
    SyncTables,
    PairingTables,
    OrgTables,
    OutboxTables,
    SharingKeyTables,
    CiTables,
    PlatformTables {
  users: UsersTable;
  audit_events: AuditEventsTable;
  server_meta: ServerMetaTable;
}

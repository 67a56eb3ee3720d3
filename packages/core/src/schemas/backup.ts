/**
 * The files `latchkey-server admin backup` writes beside a backup (docs/operations.md, "Backups and restore
 * drills"): FILE.manifest.json, what made the backup and what it holds, and with --include-secret
 * FILE.secrets.json. `admin restore` reads both through these before trusting any of it.
 */
import * as z from "zod/mini";

/** The manifest's format version; a restore refuses any other. */
export const BACKUP_FORMAT = 1;

/** FILE.manifest.json. */
export const backupManifestSchema = z.strictObject({
  format: z.literal(BACKUP_FORMAT),
  /** The latchkey-server release that wrote it. */
  serverVersion: z.string(),
  /** The migrations its database had run, in order. */
  migrations: z.array(z.string()),
  createdAt: z.string(),
  database: z.enum(["sqlite", "postgres"]),
  /** Whether FILE.secrets.json was written beside it. */
  includesSecrets: z.boolean(),
});

/** A backup's manifest. */
export type BackupManifest = z.output<typeof backupManifestSchema>;

/** FILE.secrets.json (0600): what a restored server needs besides its database. */
export const backupSecretsSchema = z.strictObject({
  serverSecret: z.string().check(z.minLength(1)),
  /** The escrow key (standard base64), or null when the server had none. */
  escrowKey: z.nullable(z.string()),
});

/** A backup's secrets file. */
export type BackupSecrets = z.output<typeof backupSecretsSchema>;

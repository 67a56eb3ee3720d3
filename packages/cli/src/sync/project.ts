import {
  LatchkeyError,
  checkSchema,
  isUuid,
  packageJsonSchema,
  parseEnvSchema,
  projectNameSchema,
  vaultSyncSchema,
  type EnvSchema,
} from "@latchkey/core";
import fs from "node:fs";
import { basename, join } from "node:path";
import type { Context } from "../context.js";
import type { Keystore } from "../keystore/types.js";
import { printStatus } from "../output/output.js";
import { authorizeVaultUse } from "../project/approvals.js";
import { findProject, resolveVaultId, updateProjectField, type Project } from "../project/project.js";
import { vaultKeyAccount, type VaultStoreDeps } from "../vault/vault-store.js";

/** The project a sync command works on. */
export interface SyncProject {
  readonly vaultId: string;
  /** latchkey.json when it names this vault (LATCHKEY_VAULT_ID may point elsewhere); null otherwise. */
  readonly project: Project | null;
  readonly keystore: Keystore;
  readonly deps: VaultStoreDeps;
}

/** The project's vault id, which must be a UUID to be synced (the server names vaults by UUID). */
export function syncVaultId(ctx: Context, project: Project | null): string {
  const vaultId = resolveVaultId(ctx.env, project);
  if (!isUuid(vaultId)) {
    throw new LatchkeyError("LK_VAULT_ID_INVALID", {
      message: `Vault ${vaultId} cannot be synced: a Latchkey server names vaults by UUID.`,
      hint: "Use the UUID latchkey.json was created with (unset LATCHKEY_VAULT_ID, or set it to a UUID).",
    });
  }
  return vaultId;
}

/**
 * Finds the project and its vault; sync commands never create latchkey.json. A vault this machine uses for
 * another project root is opened only once approved (project/approvals.ts).
 */
export async function openSyncProject(ctx: Context): Promise<SyncProject> {
  const found = await findProject(ctx.cwd);
  const vaultId = syncVaultId(ctx, found);
  if (found !== null) await authorizeVaultUse(ctx, { vaultId, project: found, creates: false });
  const { keystore } = await ctx.keystore(vaultKeyAccount(vaultId));
  return {
    vaultId,
    project: found !== null && found.config.vault === vaultId ? found : null,
    keystore,
    deps: { keystore, home: ctx.paths.home, vaultsDir: ctx.paths.vaults, random: ctx.random },
  };
}

/** `vaultSync.personalVersion` of latchkey.json, or undefined when absent or not a non-negative integer. */
export function personalVersion(project: Project | null): number | undefined {
  const sync = checkSchema(vaultSyncSchema, project?.config.vaultSync);
  return sync.ok ? sync.value.personalVersion : undefined;
}

/**
 * Records the synced version in latchkey.json (formatting kept). The sync already happened: a file that cannot
 * take it only earns a warning.
 */
export async function recordPersonalVersion(
  ctx: Context,
  project: Project | null,
  version: number,
): Promise<void> {
  if (project === null) return;
  try {
    await updateProjectField(project.file, ["vaultSync", "personalVersion"], version);
  } catch (error) {
    const reason = error instanceof LatchkeyError ? error.message : String(error);
    printStatus(ctx, `Warning: could not record vaultSync.personalVersion in ${project.file}: ${reason}`);
  }
}

/** The push's `schema`: latchkey.json's envSchema; absent → undefined; malformed → a warning and undefined. */
export function pushSchema(ctx: Context, project: Project | null): EnvSchema | undefined {
  const raw = project?.config.envSchema;
  if (raw === undefined || project === null) return undefined;
  try {
    return parseEnvSchema(raw, project.file);
  } catch (error) {
    const reason = error instanceof LatchkeyError ? error.message : String(error);
    printStatus(ctx, `Warning: envSchema in ${project.file} is not valid, pushing without it: ${reason}`);
    return undefined;
  }
}

/** The push's display name: package.json `name`, then latchkey.json `name`, then the directory's name. */
export function pushName(ctx: Context, project: Project | null): string {
  const root = project?.root ?? ctx.cwd;
  let pkg: unknown;
  try {
    pkg = JSON.parse(fs.readFileSync(join(root, "package.json"), "utf8"));
  } catch {
    // no readable package.json: fall through
  }
  const fromPackage = checkSchema(packageJsonSchema, pkg);
  const name = fromPackage.ok ? fromPackage.value.name : undefined;
  if (name !== undefined && name.trim() !== "") return name;
  const fromProject = checkSchema(projectNameSchema, project?.config.name);
  if (fromProject.ok && fromProject.value.trim() !== "") return fromProject.value;
  return basename(root);
}

import {
  LatchkeyError,
  MAX_NAME_LENGTH,
  PAIRING_LABEL_UNPRINTABLE,
  checkSchema,
  isOrgSlug,
  isUuid,
  packageJsonSchema,
  parseEnvSchema,
  projectNameSchema,
  projectOrgSchema,
  vaultSyncSchema,
  type EnvSchema,
} from "@latchkey/core";
import fs from "node:fs";
import { basename, join } from "node:path";
import type { Context } from "../context.js";
import type { Keystore } from "../keystore/types.js";
import { printStatus } from "../output/output.js";
import type { ApiOptions } from "../server/api.js";
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

/**
 * The version latchkey.json records as last synced of the personal copy (`vaultSync.personalVersion`) or of
 * organisation `org`'s (`vaultSync.orgVersions.<org>`); undefined when absent or not valid.
 */
export function recordedVersion(project: Project | null, org?: string): number | undefined {
  const sync = checkSchema(vaultSyncSchema, project?.config.vaultSync);
  if (!sync.ok) return undefined;
  return org === undefined ? sync.value.personalVersion : sync.value.orgVersions?.[org];
}

/**
 * Records the synced version of the personal copy, or of `org`'s, in latchkey.json (formatting kept). The sync
 * already happened: a file that cannot take it only earns a warning.
 */
export async function recordVersion(
  ctx: Context,
  project: Project | null,
  version: number,
  org?: string,
): Promise<void> {
  if (project === null) return;
  const path = org === undefined ? ["vaultSync", "personalVersion"] : ["vaultSync", "orgVersions", org];
  try {
    await updateProjectField(project.file, path, version);
  } catch (error) {
    const reason = error instanceof LatchkeyError ? error.message : String(error);
    printStatus(ctx, `Warning: could not record ${path.join(".")} in ${project.file}: ${reason}`);
  }
}

/** How a sync command line chose its copy: `--org SLUG`, `--personal`, or neither. */
export interface CopyChoice {
  org?: string;
  personal?: boolean;
}

/**
 * The organisation whose copy a sync command works on, or undefined for the personal copy: `--org SLUG`, else the
 * personal copy with `--personal`, else latchkey.json's `org`, else the personal copy. A slug that is not one is
 * LK_USAGE (on the command line) or LK_PROJECT_INVALID (in latchkey.json).
 */
export function chosenOrg(project: Project | null, choice: CopyChoice): string | undefined {
  if (choice.org !== undefined && choice.personal === true) {
    throw new LatchkeyError("LK_USAGE", {
      message: "--org and --personal name different copies of the vault; give one of them.",
    });
  }
  if (choice.org !== undefined) {
    if (!isOrgSlug(choice.org)) {
      throw new LatchkeyError("LK_USAGE", {
        message: "--org takes an organisation slug: 1 to 40 lower-case letters, digits and inner hyphens.",
        hint: "List your organisations with `latchkey org list`.",
      });
    }
    return choice.org;
  }
  if (choice.personal === true || project === null || project.config.org === undefined) return undefined;
  const org = checkSchema(projectOrgSchema, project.config.org);
  if (!org.ok) {
    throw new LatchkeyError("LK_PROJECT_INVALID", {
      message: `"org" in ${project.file} is not an organisation slug: ${org.message}`,
      hint: "Set it to the slug `latchkey org list` shows, or remove it to use your personal copy.",
      details: { path: project.file },
    });
  }
  return org.value;
}

/** How a command line selects `org`'s copy, for hints: ` --org SLUG`, or nothing for the personal copy. */
export function orgFlag(org: string | undefined): string {
  return org === undefined ? "" : ` --org ${org}`;
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

/**
 * The push's display name: package.json `name`, then latchkey.json `name`, then the directory's name — without
 * the control and bidirectional control characters the server refuses (organisation members see the name), at most
 * MAX_NAME_LENGTH characters.
 */
export function pushName(ctx: Context, project: Project | null): string {
  const root = project?.root ?? ctx.cwd;
  let pkg: unknown;
  try {
    pkg = JSON.parse(fs.readFileSync(join(root, "package.json"), "utf8"));
  } catch {
    // no readable package.json: fall through
  }
  const fromPackage = checkSchema(packageJsonSchema, pkg);
  const fromProject = checkSchema(projectNameSchema, project?.config.name);
  const candidates = [
    fromPackage.ok ? fromPackage.value.name : undefined,
    fromProject.ok ? fromProject.value : undefined,
    basename(root),
  ];
  for (const candidate of candidates) {
    const cleaned = [...(candidate ?? "").replace(PAIRING_LABEL_UNPRINTABLE, "")]
      .slice(0, MAX_NAME_LENGTH)
      .join("");
    if (cleaned.trim() !== "") return cleaned;
  }
  return "vault";
}

/** What a command about one copy of this project's vault is given: which copy, and the server options. */
export interface CopyCommandOptions extends CopyChoice, ApiOptions {}

/**
 * The copy a command about one copy of the project's vault works on — the vault id (latchkey.json or
 * LATCHKEY_VAULT_ID), the organisation (`--org`, `--personal` or latchkey.json's `org`) — and the server options
 * of its requests.
 */
export async function copyTarget(
  ctx: Context,
  options: CopyCommandOptions,
): Promise<{ vaultId: string; org: string | undefined; api: ApiOptions }> {
  const project = await findProject(ctx.cwd);
  const vaultId = syncVaultId(ctx, project);
  const org = chosenOrg(project, options);
  const api: ApiOptions = {
    verbose: options.verbose ?? 0,
    ...(options.profile === undefined ? {} : { profile: options.profile }),
    ...(options.server === undefined ? {} : { server: options.server }),
  };
  return { vaultId, org, api };
}

/**
 * latchkey.json, the committed file that ties a project to its vault (DESIGN.md, "Project identity"). Its parts
 * are read where they are used, so each is a schema of its own: `run` reads `vault` and `envSchema` and must not
 * fail over a `registries` mistake that only `token` would meet.
 */
import * as z from "zod/mini";
import { vaultIdProblem } from "../vault-id.js";
import { canonicalVaultId } from "../sync-wire.js";
import { tokenEnvSchema, providerArgvSchema } from "./config-toml.js";
import { envSchemaSchema } from "./env-schema.js";
import { table } from "./parse.js";
import { orgSlugSchema } from "./org-api.js";
import { CONFIG_NAME, isOrgSlug, isTable } from "./rules.js";

/** `vault`: the project's vault id (a UUID v4 when Latchkey made it), read in its one spelling (lower case). */
export const projectVaultSchema = z.pipe(
  z.string({ error: '"vault" must be a string' }).check(
    z.refine((id) => vaultIdProblem(id) === undefined, {
      error: (issue) => `"vault" is not a valid vault id: ${vaultIdProblem(String(issue.input))}`,
    }),
  ),
  z.transform(canonicalVaultId),
);

/** `profile`: the profile of config.toml this project's commands run under unless one is chosen. */
export const projectProfileSchema = z
  .string()
  .check(z.regex(CONFIG_NAME, { error: "expected a profile name (letters, digits, '.', '_', '-')" }));

/** `name`: the vault's display name on a server, when package.json names none. */
export const projectNameSchema = z.string();

/** `org`: the organisation whose copy of the vault `env push`, `env pull`, `env log` and `env share` use by default. */
export const projectOrgSchema = orgSlugSchema;

/**
 * `vaultSync`: what the sync client records in the project: the version of the personal copy it last synced,
 * and per organisation slug the version of that organisation's copy.
 */
export const vaultSyncSchema = z.looseObject({
  personalVersion: z.optional(z.int().check(z.gte(0))),
  orgVersions: z.optional(z.record(z.string().check(z.refine(isOrgSlug)), z.int().check(z.gte(0)))),
});

/**
 * A registry declared by a project: like config.toml's, without `kind`, which decides which of the user's
 * well-known tokens a registry may receive and so is the user's to say.
 */
export const projectRegistrySchema = table(
  { tokenEnv: z.optional(tokenEnvSchema), provider: z.optional(providerArgvSchema) },
  {
    refused: {
      kind: "`kind` is only accepted in your own config.toml, since it decides which of your tokens the registry may receive",
    },
  },
);

/** One registry declaration of latchkey.json. */
export type ProjectRegistry = z.output<typeof projectRegistrySchema>;

/** `registries`: declarations keyed by registry URL. */
export const projectRegistriesSchema = z.pipe(
  z.custom<Record<string, unknown>>(isTable, { error: "expected a table of registries" }),
  z.record(z.string(), projectRegistrySchema),
);

/**
 * The whole of latchkey.json: an object whose members Latchkey reads are these. Other members are left alone: the
 * file is the project's. `envSchema` is {@link envSchemaSchema}, which the CLI reads with its zod-free reader,
 * parseEnvSchema.
 */
export const projectFileSchema = z.pipe(
  z.custom<Record<string, unknown>>(isTable, { error: "the top level must be an object" }),
  z.looseObject({
    vault: z.optional(projectVaultSchema),
    envSchema: z.optional(envSchemaSchema),
    profile: z.optional(projectProfileSchema),
    name: z.optional(projectNameSchema),
    org: z.optional(projectOrgSchema),
    vaultSync: z.optional(vaultSyncSchema),
    registries: z.optional(projectRegistriesSchema),
  }),
);

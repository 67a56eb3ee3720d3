// `latchkey setup ci --oidc --provider github|gitlab`: prints the CI job that pulls this project's vault through
// OIDC (ci/workflow.ts), with the .npmrc lines `setup ci npmrc` would write for the registries the project names.
// The server and the vault come from the profile and latchkey.json when known, placeholders otherwise; nothing is
// written and nothing is sent.
import { CI_PROVIDERS, LatchkeyError, isLatchkeyError, type CiProvider } from "@latchkey/core";
import type { Context } from "../context.js";
import { workflowSnippet, type WorkflowFacts } from "../ci/workflow.js";
import { printData, printJson, printStatus } from "../output/output.js";
import { findProject, resolveVaultId } from "../project/project.js";
import { resolveServer } from "../server/session.js";
import { chosenOrg } from "../sync/project.js";
import { validateEnvName } from "../vault/names.js";
import { ciNpmrcLines } from "./setup.js";

/** Options of `setup ci --oidc`. */
export interface SetupCiOidcOptions {
  provider: string;
  environment: string;
  org?: string;
  registries: readonly string[];
  json: boolean;
}

/** `setup ci --oidc`: the job's YAML on stdout, then the .npmrc lines it needs; with --json, all of it as JSON. */
export async function setupCiOidc(ctx: Context, options: SetupCiOidcOptions): Promise<number> {
  if (!(CI_PROVIDERS as readonly string[]).includes(options.provider)) {
    throw new LatchkeyError("LK_USAGE", {
      message: `--provider must be one of ${CI_PROVIDERS.join(", ")}.`,
      hint: "e.g. `latchkey setup ci --oidc --provider github`.",
    });
  }
  const provider = options.provider as CiProvider;
  const environment = validateEnvName(options.environment);
  const project = await findProject(ctx.cwd);
  let vaultId: string | null = null;
  try {
    vaultId = resolveVaultId(ctx.env, project);
  } catch (error) {
    if (!isLatchkeyError(error, "LK_PROJECT_NOT_FOUND")) throw error;
  }
  const vaultInProject =
    vaultId !== null && ctx.env.LATCHKEY_VAULT_ID === undefined && project?.config.vault === vaultId;
  // latchkey.json's "org" reaches the job with the checkout; only an --org given here goes on its command line.
  const org = options.org === undefined ? undefined : chosenOrg(project, { org: options.org });
  const server = (await resolveServer(ctx, {}))?.server ?? null;
  const npmrc = await ciNpmrcLines(ctx, options.registries);
  const facts: WorkflowFacts = {
    provider,
    server,
    vaultId,
    vaultInProject,
    environment,
    npmrcVariables: npmrc.map((l) => l.variable),
    ...(org === undefined ? {} : { org }),
  };
  const workflow = workflowSnippet(facts);
  if (options.json) {
    printJson(ctx, {
      provider,
      server,
      vaultId,
      org: org ?? null,
      environment,
      workflow,
      npmrc: npmrc.map((l) => ({ registry: l.registry, variable: l.variable, line: l.line })),
    });
    return 0;
  }
  const npmrcText =
    npmrc.length === 0
      ? []
      : [
          "",
          "# .npmrc (the project's, for npm and yarn 1; pnpm reads ${VARIABLE} lines only from the user .npmrc,",
          "# which `latchkey setup ci npmrc` writes in a step of the job). The vault's environment holds each variable.",
          ...npmrc.map((l) => l.line),
        ];
  printData(ctx, [workflow.trimEnd(), ...npmrcText].join("\n"));
  const missing = [
    ...(server === null ? ["the server's URL (no --server profile or LATCHKEY_SERVER here)"] : []),
    ...(vaultId === null ? ["the vault's id (no latchkey.json here)"] : []),
  ];
  printStatus(
    ctx,
    [
      ...(missing.length === 0 ? [] : [`Placeholders stand for ${missing.join(" and ")}: replace them.`]),
      `The vault's CI policy decides which jobs may pull: \`latchkey env ci enable --provider ${provider} --repo …\` (\`latchkey env ci show\` shows it).`,
    ].join("\n"),
  );
  return 0;
}

import { Option, type Command } from "commander";
import { CI_PROVIDERS } from "@latchkey/core";
import type { Context } from "../context.js";
import type { CiTargetOptions } from "../ci/policy.js";
import { envCiDisable, envCiEnable, envCiShow } from "./ci.js";
import { copyOptions, withCopyOptions } from "./sync-command.js";
import { globalOptions, type RunState } from "./support.js";

interface CiFlags {
  accept?: boolean;
  server?: string;
  profile?: string;
  json?: boolean;
  org?: string;
  personal?: boolean;
}

interface EnableFlags extends CiFlags {
  provider: string;
  repo: string;
  repoId?: string;
  ownerId?: string;
  branch: string[];
  environment: string[];
  allowForks?: boolean;
  protectedOnly?: boolean;
  audience?: string;
  issuer?: string;
}

function withServerOptions(command: Command): Command {
  return withCopyOptions(command)
    .option("--server <url>", "the Latchkey server (default: LATCHKEY_SERVER, else the profile's)")
    .option("--profile <name>", "the profile whose server session to use")
    .option("--json", "print JSON");
}

function targetOptions(command: Command, flags: CiFlags): CiTargetOptions & { json: boolean } {
  return {
    verbose: globalOptions(command).verbose,
    json: flags.json === true,
    ...copyOptions(flags),
    ...(flags.server === undefined ? {} : { server: flags.server }),
    ...(flags.profile === undefined ? {} : { profile: flags.profile }),
  };
}

const repeatable = (value: string, previous: string[]) => [...previous, value];

const CI_HELP =
  "\nA CI job proves who it is with its platform's OIDC ID token (GitHub Actions, GitLab CI); the server checks\n" +
  "the token against the vault's CI policy and releases one environment to it. No secret is stored in the CI\n" +
  "system. The price: enabling CI escrows the vault's key for the server, so the server can decrypt that vault\n" +
  "(only the vaults you enable, each release in the audit log). `latchkey env ci disable` deletes the escrow.\n" +
  "The job side: `latchkey setup ci --oidc`, `latchkey run --oidc`. See docs/ci.md.";

/** Adds `ci enable`, `ci show` and `ci disable` to `latchkey env`. */
export function addCiCommands(env: Command, ctx: Context, state: RunState): void {
  const ci = env
    .command("ci")
    .description("let CI jobs pull this vault with their OIDC ID token, with no stored secret")
    .addHelpText("after", CI_HELP);

  withServerOptions(
    ci
      .command("enable")
      .description("allow CI jobs of one repository to pull this vault (escrows its key for the server)")
      .addOption(
        new Option("--provider <provider>", "the CI platform").choices(CI_PROVIDERS).makeOptionMandatory(),
      )
      .addOption(
        new Option(
          "--repo <owner/repo>",
          "the repository (GitHub OWNER/REPO; GitLab: the project's full path GROUP/…/PROJECT), exactly as the platform spells it",
        ).makeOptionMandatory(),
      )
      .option(
        "--repo-id <n>",
        "the repository's numeric id (GitLab: the project id); GitHub: looked up with gh when left out",
      )
      .option(
        "--owner-id <n>",
        "the repository owner's numeric id (GitLab: the namespace id); GitHub: looked up with gh when left out",
      )
      .addOption(
        new Option(
          "--branch <glob>",
          "a branch jobs may run on: main, release/* (* within a segment, ** across); repeatable",
        )
          .argParser(repeatable)
          .default([] as string[], "GitHub: the repository's default branch"),
      )
      .addOption(
        new Option(
          "--environment <name>",
          "a vault environment jobs may pull, only from a job running in the CI environment of that name; repeatable",
        )
          .argParser(repeatable)
          .default([] as string[], "any, with no environment check"),
      )
      .option(
        "--allow-forks",
        "also admit runs a fork can trigger (GitHub pull_request, pull_request_target, workflow_run; GitLab fork pipelines)",
      )
      .option("--protected-only", "GitLab: admit only jobs on protected branches (ref_protected)")
      .option("--audience <aud>", "the audience the job's token must name (default: the server's URL)")
      .option(
        "--issuer <url>",
        "the token issuer, when the server trusts several of the provider's (a self-managed GitLab)",
      ),
  )
    .addHelpText(
      "after",
      "\nThe policy pins the repository by name AND by its numeric ids, so a renamed, transferred or re-created\n" +
        "repository does not inherit access. For GitHub the ids (and, without --branch, the default branch) are\n" +
        "read with `gh api repos/OWNER/REPO` when GitHub's CLI is installed; otherwise pass --repo-id and\n" +
        "--owner-id (`gh api repos/OWNER/REPO --jq '.id, .owner.id'` on any machine with gh, or `id` and `owner.id`\n" +
        "of https://api.github.com/repos/OWNER/REPO). For GitLab pass --repo-id (the project id, on the project's\n" +
        "overview page), --owner-id (the namespace id: `namespace.id` of /api/v4/projects/:id) and --branch.\n\n" +
        "Before asking for your password the command shows what the policy allows. Enabling escrows the key of\n" +
        "this copy of the vault for the server: from then on the server can decrypt it, and releases one\n" +
        "environment at a time to a job the policy admits, each release in `latchkey env log`. It asks for your\n" +
        "password on a terminal (there is no way to do it from a script, by design). An organisation's copy\n" +
        "(--org SLUG) needs the maintainer role and a pull of it on this machine first. Running it again\n" +
        "replaces the policy.\n\n" +
        "Examples:\n" +
        "  latchkey env ci enable --provider github --repo acme/web --environment production\n" +
        "  latchkey env ci enable --org acme --provider github --repo acme/web --branch main --branch 'release/*'\n" +
        "  latchkey env ci enable --provider gitlab --repo acme/platform/web --repo-id 4521 --owner-id 88 \\\n" +
        "      --branch main --protected-only",
    )
    .action(async (flags: EnableFlags, command: Command) => {
      state.exitCode = await envCiEnable(ctx, {
        ...targetOptions(command, flags),
        provider: flags.provider,
        repo: flags.repo,
        branches: flags.branch,
        environments: flags.environment,
        allowForks: flags.allowForks === true,
        protectedOnly: flags.protectedOnly === true,
        ...(flags.repoId === undefined ? {} : { repoId: flags.repoId }),
        ...(flags.ownerId === undefined ? {} : { ownerId: flags.ownerId }),
        ...(flags.audience === undefined ? {} : { audience: flags.audience }),
        ...(flags.issuer === undefined ? {} : { issuer: flags.issuer }),
      });
    });

  withServerOptions(
    ci
      .command("show")
      .description("the vault's CI policy, its escrow, and who enabled it when")
      .option(
        "--accept",
        "agree that pushes from this machine escrow the vault's key for the server (so it can decrypt it)",
      ),
  )
    .addHelpText(
      "after",
      "\nAn organisation's copy's policy (--org SLUG) is readable by every member.\n\n" +
        "A push renews the escrow of a copy's key only when this machine agreed to it: by enabling CI here, or with\n" +
        "--accept after reading the policy (a policy another maintainer enabled, or a new escrow key of the server).\n\n" +
        "Examples:\n  latchkey env ci show\n  latchkey env ci show --org acme --json\n  latchkey env ci show --org acme --accept",
    )
    .action(async (flags: CiFlags, command: Command) => {
      state.exitCode = await envCiShow(ctx, {
        ...targetOptions(command, flags),
        ...(flags.accept === true ? { accept: true } : {}),
      });
    });

  withServerOptions(
    ci
      .command("disable")
      .description("stop CI pulls of the vault: delete its policy and the escrowed key from the server"),
  )
    .addHelpText(
      "after",
      "\nNo password is asked: it takes access away. CI access tokens already handed out stop working at once.\n" +
        "An organisation's copy (--org SLUG) needs the maintainer role. A copy without CI pulls is left as it is.\n\n" +
        "Examples:\n  latchkey env ci disable\n  latchkey env ci disable --org acme",
    )
    .action(async (flags: CiFlags, command: Command) => {
      state.exitCode = await envCiDisable(ctx, targetOptions(command, flags));
    });
}

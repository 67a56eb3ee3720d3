import { Command, Option } from "commander";
import { CI_PROVIDERS, LatchkeyError } from "@latchkey/core";
import type { Context } from "../context.js";
import { setupNpmrc, setupPnpm } from "./setup.js";
import { setupCiOidc } from "./setup-ci.js";
import { setupGit } from "./setup-git.js";
import type { RunState } from "./support.js";

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** Builds `setup` with `pnpm`, `npmrc`, `ci npmrc`, `ci --oidc` and `git`. */
export function setupCommand(ctx: Context, state: RunState): Command {
  const setup = new Command("setup")
    .description("configure other tools to take their credentials from Latchkey")
    // `setup ci` has options of its own and a subcommand with the same names (--json, --registry): each command's
    // options are read only before its subcommand.
    .enablePositionalOptions();

  setup
    .command("pnpm")
    .description("point pnpm's tokenHelper at Latchkey for each logged-in registry (user .npmrc)")
    .option(
      "--registry <url>",
      "a registry to set up (repeatable); default: every logged-in registry",
      collect,
    )
    .option("--json", "print what was written as JSON")
    .addHelpText(
      "after",
      "\nFor each registry, writes a small script under $LATCHKEY_HOME/bin (mode 0700, no secret in it) that runs\n" +
        "`latchkey token --registry URL` by absolute paths and prints `Bearer <token>`, and adds\n" +
        "`//host/:tokenHelper=<script>` to your user .npmrc (pnpm refuses a tokenHelper in a project .npmrc).\n" +
        "Every other line of the .npmrc is kept; running it again changes nothing.\n\n" +
        "Examples:\n" +
        "  latchkey login --registry https://npm.example.com/ && latchkey setup pnpm\n" +
        "  latchkey setup pnpm --registry https://npm.pkg.github.com/",
    )
    .action(async (opts: { registry?: string[]; json?: boolean }) => {
      state.exitCode = await setupPnpm(ctx, { registries: opts.registry ?? [], json: opts.json === true });
    });

  const npmrcHelp = (ci: boolean): string =>
    "\nEach line is `//host/:_authToken=${VARIABLE}`: npm, pnpm and yarn 1 read the token from the variable, so\n" +
    "the file never holds one. The registries are those given with --registry, else the ones your .npmrc files,\n" +
    (ci
      ? "config.toml and latchkey.json name.\n"
      : "config.toml and latchkey.json name and the ones you are logged in to.\n") +
    "Your user .npmrc is written unless --project (pnpm ignores ${VARIABLE} credentials in a project .npmrc).\n" +
    "A line holding a plaintext token is only replaced with --force.\n" +
    (ci
      ? "\nVariables: NPM_TOKEN (npmjs), GITHUB_TOKEN (GitHub Packages), CI_JOB_TOKEN (GitLab), a registry's tokenEnv\n" +
        "from config.toml, else LATCHKEY_TOKEN_<HOST>_<HASH>.\n\n" +
        "Examples:\n  latchkey setup ci npmrc --registry https://npm.pkg.github.com/\n  latchkey setup ci npmrc --json\n"
      : "\nVariables: LATCHKEY_TOKEN_<HOST>_<HASH>, which `latchkey exec` sets. Run without it, npm and pnpm go\n" +
        'without a token for those registries and yarn 1 stops with "Failed to replace env in config".\n\n' +
        "Examples:\n  latchkey setup npmrc && latchkey exec -- yarn install\n");

  const defineNpmrc = (command: Command, ci: boolean): Command =>
    command
      .option("--registry <url>", "a registry to set up (repeatable)", collect)
      .option("--project", "write the project's .npmrc instead of your user .npmrc")
      .option("--force", "replace a line that holds a plaintext token")
      .option("--json", "print the lines and variables as JSON")
      .addHelpText("after", npmrcHelp(ci))
      .action(async (opts: { registry?: string[]; project?: boolean; force?: boolean; json?: boolean }) => {
        state.exitCode = await setupNpmrc(ctx, {
          ci,
          project: opts.project === true,
          registries: opts.registry ?? [],
          force: opts.force === true,
          json: opts.json === true,
        });
      });

  defineNpmrc(
    setup.command("npmrc").description("write ${VARIABLE} token lines (never a token) for `latchkey exec`"),
    false,
  );
  const ci = setup
    .command("ci")
    .description(
      "configuration for CI jobs: `ci --oidc` prints a job that pulls the vault with no stored secret",
    )
    .enablePositionalOptions()
    .option("--oidc", "print the CI job that pulls this project's vault with its OIDC ID token")
    .addOption(new Option("--provider <provider>", "with --oidc: the CI platform").choices(CI_PROVIDERS))
    .option("-e, --env <name>", "with --oidc: the environment the job pulls", "production")
    .option("--org <slug>", "with --oidc: the organisation's copy (default: latchkey.json's \"org\")")
    .option("--registry <url>", "with --oidc: a registry whose .npmrc line to print (repeatable)", collect)
    .option("--json", "with --oidc: print the job and the .npmrc lines as JSON")
    .addHelpText(
      "after",
      "\nWith --oidc, prints a job for the platform: GitHub Actions' needs `permissions: id-token: write`\n" +
        "(the job may then request its OIDC ID token) and LATCHKEY_SERVER; GitLab CI's an `id_tokens:` block\n" +
        "naming LATCHKEY_OIDC_TOKEN with the audience of the vault's CI policy (by default the server's URL).\n" +
        "The job runs `latchkey run --oidc --env E -- …`, which exchanges that token for one environment of\n" +
        "the vault as its CI policy allows (`latchkey env ci enable`). The server comes from the profile or\n" +
        "LATCHKEY_SERVER, the vault from latchkey.json; placeholders stand for what is not known here. The\n" +
        ".npmrc lines the job needs are those `latchkey setup ci npmrc` writes (their variables must be in\n" +
        "the environment the job pulls). Nothing is written or sent. See docs/ci.md.\n\n" +
        "Examples:\n" +
        "  latchkey setup ci --oidc --provider github\n" +
        "  latchkey setup ci --oidc --provider gitlab --env staging\n" +
        "  latchkey setup ci npmrc --registry https://npm.pkg.github.com/",
    )
    .action(
      async (opts: {
        oidc?: boolean;
        provider?: string;
        env: string;
        org?: string;
        registry?: string[];
        json?: boolean;
      }) => {
        if (opts.oidc !== true || opts.provider === undefined) {
          throw new LatchkeyError("LK_USAGE", {
            message:
              opts.oidc === true
                ? "setup ci --oidc needs --provider github or --provider gitlab."
                : "setup ci needs a subcommand (npmrc) or --oidc --provider github|gitlab.",
            hint: "e.g. `latchkey setup ci --oidc --provider github`, or `latchkey setup ci npmrc`.",
          });
        }
        state.exitCode = await setupCiOidc(ctx, {
          provider: opts.provider,
          environment: opts.env,
          registries: opts.registry ?? [],
          json: opts.json === true,
          ...(opts.org === undefined ? {} : { org: opts.org }),
        });
      },
    );
  defineNpmrc(
    ci
      .command("npmrc")
      .description("write ${VARIABLE} token lines (never a token) and print the CI variables to set"),
    true,
  );
  setup.addCommand(setupGitCommand(ctx, state));
  return setup;
}

/** Builds `setup git`. */
function setupGitCommand(ctx: Context, state: RunState): Command {
  return new Command("git")
    .description(
      "make git ask Latchkey for http(s) credentials (sets credential.helper through `git config`)",
    )
    .addOption(new Option("--global", "write your global git config (the default)").conflicts("local"))
    .addOption(new Option("--local", "write the current repository's git config only"))
    .option(
      "--host <host>",
      "only for this host: `git.example.com[:port]`, or `http://host[:port]` for plain http",
    )
    .option("--json", "print what was written as JSON")
    .addHelpText(
      "after",
      "\ngit then runs `latchkey git-credential get|store|erase` by this latchkey's absolute path, on the first\n" +
        "`node` on PATH. Earlier helpers for the same scope are replaced (an empty value resets git's list), so a\n" +
        "plaintext `store` helper no longer receives your passwords. Run it again after moving Latchkey\n" +
        "(`latchkey doctor` warns when the configured command is gone).\n" +
        "\nExamples:\n" +
        "  latchkey setup git\n" +
        "  latchkey setup git --host git.example.com\n" +
        "  latchkey setup git --local --host http://127.0.0.1:8080",
    )
    .action(async (opts: { local?: boolean; host?: string; json?: boolean }) => {
      state.exitCode = await setupGit(ctx, {
        scope: opts.local === true ? "local" : "global",
        ...(opts.host === undefined ? {} : { host: opts.host }),
        json: opts.json === true,
      });
    });
}

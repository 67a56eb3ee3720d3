// Every environment variable the CLI reads, or sets for the programs it starts, declared once. `latchkey --help`
// and docs/environment.md are rendered from this table, and env-vars.test.ts fails when a source under src/ reads
// a LATCHKEY_* variable that is not declared here. Plain data with no imports: the fast path and the docs script
// (which runs this file with Node's type stripping) can load it for nothing.

/** One environment variable of the CLI. */
export interface EnvironmentVariable {
  /** The name; `<…>` marks a part that varies (a family of variables). */
  readonly name: string;
  /** What it does, in one line. */
  readonly meaning: string;
  /** What holds while it is unset; absent when unset simply means off. */
  readonly default?: string;
  /** "read": you set it, Latchkey reads it. "set": Latchkey sets it for the programs it starts. */
  readonly kind: "read" | "set";
}

/** The variables, in the order `latchkey --help` and docs/environment.md list them. */
export const ENVIRONMENT_VARIABLES: readonly EnvironmentVariable[] = [
  {
    name: "LATCHKEY_HOME",
    meaning: "the state directory: config.toml, vaults, the file store",
    default: "~/.latchkey",
    kind: "read",
  },
  {
    name: "LATCHKEY_KEYSTORE",
    meaning: "force a backend: keyring | file",
    default: "the OS keychain when reachable, else the file store",
    kind: "read",
  },
  {
    name: "LATCHKEY_PASSPHRASE",
    meaning: "protect the file store with a passphrase (Argon2id) instead of a machine-bound key",
    kind: "read",
  },
  {
    name: "LATCHKEY_KEYRING_TIMEOUT_MS",
    meaning: "how long one call to the OS keychain may take, in milliseconds",
    default: "3000",
    kind: "read",
  },
  {
    name: "LATCHKEY_PROFILE",
    meaning: "the profile of config.toml to use when --profile names none",
    default: "`profile` in latchkey.json, else default",
    kind: "read",
  },
  {
    name: "LATCHKEY_SERVER",
    meaning: "the Latchkey server when --server names none; login, logout and whoami then go to it",
    default: "the profile's server",
    kind: "read",
  },
  {
    name: "LATCHKEY_VAULT_ID",
    meaning: "the vault to use, instead of the one latchkey.json names",
    kind: "read",
  },
  {
    name: "LATCHKEY_ALLOW_PROJECT_CREDENTIALS",
    meaning: "1: under CI, use what a project's latchkey.json declares without approval",
    kind: "read",
  },
  {
    name: "LATCHKEY_ALLOW_PROJECT_PROVIDERS",
    meaning: "1: under CI, run the credential providers a project declares (older, providers only)",
    kind: "read",
  },
  {
    name: "LATCHKEY_PROVIDER_TIMEOUT_MS",
    meaning: "how long a credential provider may run before it is killed, in milliseconds",
    default: "10000",
    kind: "read",
  },
  {
    name: "LATCHKEY_OIDC_TOKEN",
    meaning:
      "`--oidc` in a GitLab CI job: the job's OIDC ID token, from its `id_tokens:` block (--token-env names another variable)",
    kind: "read",
  },
  {
    name: "LATCHKEY_OIDC_AUDIENCE",
    meaning: "`--oidc` in a GitHub Actions job: the audience to request the ID token for",
    default: "the server's URL",
    kind: "read",
  },
  {
    name: "ACTIONS_ID_TOKEN_REQUEST_URL",
    meaning:
      "set by GitHub Actions for a job with `permissions: id-token: write`: where `--oidc` requests the job's ID token",
    kind: "read",
  },
  {
    name: "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    meaning: "set by GitHub Actions beside ACTIONS_ID_TOKEN_REQUEST_URL: the bearer token of that request",
    kind: "read",
  },
  {
    name: "GITHUB_ACTIONS",
    meaning:
      "true (set by GitHub Actions): `--oidc` registers each value with `::add-mask::`, so the job's log hides it",
    kind: "read",
  },
  {
    name: "GITLAB_CI",
    meaning: "true (set by GitLab CI): `--oidc` without a token names the `id_tokens:` block in its hint",
    kind: "read",
  },
  {
    name: "NO_COLOR",
    meaning: "disable colour",
    kind: "read",
  },
  {
    name: "LATCHKEY_SECRETS_FILE",
    meaning: "for `run --mount`: the path of the file that holds the secrets",
    kind: "set",
  },
  {
    name: "LATCHKEY_TOKEN_<HOST>_<HASH>",
    meaning: "for `exec`: a registry's token (see `latchkey setup npmrc`)",
    kind: "set",
  },
  {
    name: "LATCHKEY_PROVIDER_DEPTH",
    meaning: "for a credential provider: how many providers deep it runs (a loop stops at 3)",
    kind: "set",
  },
];

/** Whether `name` (from a source or a message) is declared: exactly, or as a member of a `<…>` family. */
export function isDeclaredVariable(name: string): boolean {
  return ENVIRONMENT_VARIABLES.some((v) => {
    const family = v.name.indexOf("<");
    return family === -1 ? v.name === name : name.startsWith(v.name.slice(0, family));
  });
}

/** The width the help section wraps at, like the rest of the program's help text. */
const HELP_WIDTH = 100;

/** The `Environment:` section at the end of `latchkey --help`. */
export function environmentHelp(): string {
  const indent = 2 + Math.max(...ENVIRONMENT_VARIABLES.map((v) => v.name.length)) + 2;
  const rows = (kind: EnvironmentVariable["kind"]): string[] =>
    ENVIRONMENT_VARIABLES.filter((v) => v.kind === kind).flatMap((v) => {
      const text = `${v.meaning}${v.default === undefined ? "" : ` (default ${v.default})`}`;
      const lines = [`  ${v.name}`.padEnd(indent)];
      for (const word of text.split(" ")) {
        const last = lines.length - 1;
        if (lines[last]!.length > indent && lines[last]!.length + 1 + word.length > HELP_WIDTH)
          lines.push(" ".repeat(indent) + word);
        else lines[last] += (lines[last]!.length > indent ? " " : "") + word;
      }
      return lines;
    });
  return ["Environment:", ...rows("read"), "", "Set for the programs latchkey starts:", ...rows("set")].join(
    "\n",
  );
}

function cell(text: string): string {
  return text.replace(/\|/g, "\\|");
}

/** docs/environment.md (run `npm run docs` after changing the table). */
export function environmentMarkdown(): string {
  const of = (kind: EnvironmentVariable["kind"]) => ENVIRONMENT_VARIABLES.filter((v) => v.kind === kind);
  const read = [
    "| variable | meaning | default |",
    "| --- | --- | --- |",
    ...of("read").map(
      (v) => `| \`${v.name}\` | ${cell(v.meaning)} | ${v.default === undefined ? "" : cell(v.default)} |`,
    ),
  ];
  const set = [
    "| variable | meaning |",
    "| --- | --- |",
    ...of("set").map((v) => `| \`${v.name}\` | ${cell(v.meaning)} |`),
  ];
  return [
    "# Environment variables",
    "",
    "<!-- Generated from packages/cli/src/env-vars.ts by `npm run docs`. Do not edit by hand. -->",
    "",
    "The `latchkey` command reads these variables. `latchkey --help` lists the same ones.",
    "",
    ...read,
    "",
    "## Set for the programs latchkey starts",
    "",
    "Latchkey sets these in the environment of the programs it runs (`run`, `exec`, credential providers).",
    "",
    ...set,
    "",
  ].join("\n");
}

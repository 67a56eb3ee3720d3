// What `latchkey setup ci --oidc` prints (docs/ci.md, "In the workflow"): the job a CI platform needs to pull a vault
// through OIDC. GitHub Actions: the permission to request an ID token and the server's URL; GitLab CI: an
// `id_tokens:` block whose audience is what the vault's policy expects. Text only: nothing is written.
import type { CiProvider } from "@latchkey/core";

/** Stands for the server's URL when neither the profile nor LATCHKEY_SERVER names one. */
export const SERVER_PLACEHOLDER = "https://latchkey.example.com";

/** What the job is made of. */
export interface WorkflowFacts {
  provider: CiProvider;
  /** The server's URL; null: not known here (a placeholder is printed). */
  server: string | null;
  /** The vault's id; null: not known here. */
  vaultId: string | null;
  /** True when the checkout's latchkey.json names the vault, so the job needs no LATCHKEY_VAULT_ID. */
  vaultInProject: boolean;
  /** --org for the job's command line; undefined when latchkey.json's "org" (or the personal copy) is meant. */
  org?: string;
  environment: string;
  /** The variables the job's .npmrc reads (the vault's environment must hold them). */
  npmrcVariables: readonly string[];
}

/**
 * The `latchkey run --oidc` line of the job: through npx from the project's devDependencies, or installed globally
 * first when the install itself needs the vault (its registries' tokens are in it).
 */
function runLine(facts: WorkflowFacts, program: string): string {
  const latchkey = facts.npmrcVariables.length === 0 ? "npx latchkey" : "latchkey";
  return `${latchkey} run --oidc${facts.org === undefined ? "" : ` --org ${facts.org}`} --env ${facts.environment} -- ${program}`;
}

function serverLine(facts: WorkflowFacts): string {
  return facts.server ?? `${SERVER_PLACEHOLDER}   # placeholder: your Latchkey server's URL`;
}

function vaultLines(facts: WorkflowFacts, indent: string): string[] {
  if (facts.vaultInProject) return [];
  return [
    `${indent}LATCHKEY_VAULT_ID: ${facts.vaultId ?? "00000000-0000-4000-8000-000000000000   # placeholder: the vault's id"}`,
  ];
}

/** A GitHub Actions workflow with one job that runs the tests with the vault's environment. */
function githubWorkflow(facts: WorkflowFacts): string {
  return [
    "# .github/workflows/test.yml",
    "name: test",
    "on: [push]",
    "jobs:",
    "  test:",
    "    runs-on: ubuntu-latest",
    "    permissions:",
    "      id-token: write   # the job may request its OIDC ID token, which proves which repository, branch and run it is",
    "      contents: read    # naming one permission drops the others: checkout needs this one",
    `    # environment: ${facts.environment}   # needed when the vault's CI policy names environments`,
    "    env:",
    `      LATCHKEY_SERVER: ${serverLine(facts)}`,
    ...vaultLines(facts, "      "),
    "    steps:",
    "      - uses: actions/checkout@v4",
    "      - uses: actions/setup-node@v4",
    "        with:",
    "          node-version: 24",
    ...(facts.npmrcVariables.length === 0
      ? ["      - run: npm ci   # installs latchkey (a devDependency)"]
      : [
          "      - run: npm install --global @latchkey/cli   # before npm ci, which needs the registry tokens",
          `      - run: ${runLine(facts, "npm ci")}`,
        ]),
    "      # Each value is registered with ::add-mask:: first, so the log hides it.",
    `      - run: ${runLine(facts, "npm test")}`,
    "",
  ].join("\n");
}

/** A GitLab CI job that runs the tests with the vault's environment. */
function gitlabJob(facts: WorkflowFacts): string {
  const audience = facts.server ?? SERVER_PLACEHOLDER;
  const install = facts.npmrcVariables.length === 0 ? "npm ci" : "npm install --global @latchkey/cli";
  const command = facts.npmrcVariables.length === 0 ? "npm test" : "sh -c 'npm ci && npm test'";
  return [
    "# .gitlab-ci.yml",
    "test:",
    "  image: node:24",
    "  id_tokens:",
    "    LATCHKEY_OIDC_TOKEN:",
    `      aud: ${audience}${facts.server === null ? "   # placeholder: the audience of the vault's CI policy (by default the server's URL)" : "   # the audience of the vault's CI policy (by default the server's URL)"}`,
    `  # environment: ${facts.environment}   # needed when the vault's CI policy names environments`,
    "  variables:",
    `    LATCHKEY_SERVER: ${serverLine(facts)}`,
    ...vaultLines(facts, "    "),
    "  script:",
    `    - ${install}`,
    "    # One pull per job: GitLab mints the job's token once, and the server accepts each token once.",
    `    - ${runLine(facts, command)}`,
    "",
  ].join("\n");
}

/** The job for `facts.provider`, as YAML with comments. */
export function workflowSnippet(facts: WorkflowFacts): string {
  return facts.provider === "github" ? githubWorkflow(facts) : gitlabJob(facts);
}

// `latchkey setup ci --oidc`: the job it prints is YAML a CI platform reads as meant (parsed here), with the server
// and the vault from the profile and latchkey.json or placeholders, the .npmrc lines `setup ci npmrc` would write,
// and nothing written. `setup ci npmrc` keeps its own options beside those of `setup ci`.
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { createTestContext } from "../../test/support/context.js";
import { runCli } from "../cli.js";
import { resolvePaths } from "../paths.js";

const VAULT = "4d3c2b1a-0f9e-4d8c-b7a6-958473625140";
const SERVER = "https://latchkey.acme.example";

let dir: string;
let home: string;
let app: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "lk-setup-ci-"));
  home = join(dir, "home");
  app = join(dir, "app");
  await mkdir(home);
  await mkdir(app);
  await writeFile(join(app, "package.json"), "{}");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function context(env: Record<string, string> = {}) {
  const all = { HOME: home, LATCHKEY_HOME: join(dir, "lk"), ...env };
  return createTestContext({ env: all, paths: resolvePaths(all), cwd: app });
}

/** The YAML part of what was printed: everything before the .npmrc comment. */
function yamlOf(stdout: string): unknown {
  return parse(stdout.split("\n# .npmrc")[0]!);
}

describe("setup ci --oidc", () => {
  it("GitHub: id-token: write, the server, the vault from latchkey.json, the run line; nothing written", async () => {
    await writeFile(join(app, "latchkey.json"), JSON.stringify({ vault: VAULT }));
    const ctx = context({ LATCHKEY_SERVER: `${SERVER}/` });
    expect(await runCli(["setup", "ci", "--oidc", "--provider", "github"], ctx)).toBe(0);
    const workflow = yamlOf(ctx.stdout.text()) as {
      jobs: {
        test: { permissions: Record<string, string>; env: Record<string, string>; steps: { run?: string }[] };
      };
    };
    const job = workflow.jobs.test;
    expect(job.permissions).toEqual({ "id-token": "write", contents: "read" });
    // The vault comes with the checkout's latchkey.json: no LATCHKEY_VAULT_ID.
    expect(job.env).toEqual({ LATCHKEY_SERVER: SERVER });
    expect(job.steps.map((s) => s.run).filter(Boolean)).toEqual([
      "npm ci",
      "npx latchkey run --oidc --env production -- npm test",
    ]);
    expect(ctx.stdout.text()).not.toContain("# .npmrc");
    expect(ctx.stderr.text()).not.toContain("Placeholders");
    expect(await readdir(home)).toEqual([]);
    expect(await readdir(app)).toEqual(["latchkey.json", "package.json"]);
  });

  it("GitLab: an id_tokens block whose audience is the server, the registries' .npmrc lines, one pull per job", async () => {
    await writeFile(join(app, "latchkey.json"), JSON.stringify({ vault: VAULT, org: "acme" }));
    const npmrc = "@acme:registry=https://npm.pkg.github.com/\n";
    await writeFile(join(app, ".npmrc"), npmrc);
    const ctx = context({ LATCHKEY_SERVER: SERVER });
    expect(await runCli(["setup", "ci", "--oidc", "--provider", "gitlab", "--env", "staging"], ctx)).toBe(0);
    const out = ctx.stdout.text();
    const job = (yamlOf(out) as { test: Record<string, unknown> }).test;
    expect(job.id_tokens).toEqual({ LATCHKEY_OIDC_TOKEN: { aud: SERVER } });
    expect(job.variables).toEqual({ LATCHKEY_SERVER: SERVER });
    expect(job.script).toEqual([
      "npm install --global @latchkey/cli",
      "latchkey run --oidc --env staging -- sh -c 'npm ci && npm test'",
    ]);
    expect(out).toContain("\n//npm.pkg.github.com/:_authToken=${GITHUB_TOKEN}\n");
    // Printed, not written.
    expect(await readFile(join(app, ".npmrc"), "utf8")).toBe(npmrc);
    expect(await readdir(home)).toEqual([]);
  });

  it("placeholders for what is not known here, said on stderr; --json; --org on the job's command line", async () => {
    const ctx = context();
    expect(
      await runCli(["setup", "ci", "--oidc", "--provider", "github", "--org", "acme", "--json"], ctx),
    ).toBe(0);
    const answer = JSON.parse(ctx.stdout.text()) as { server: null; vaultId: null; workflow: string };
    expect(answer).toMatchObject({ provider: "github", server: null, vaultId: null, org: "acme", npmrc: [] });
    const job = (
      parse(answer.workflow) as { jobs: { test: { env: Record<string, string>; steps: { run?: string }[] } } }
    ).jobs.test;
    expect(job.env.LATCHKEY_SERVER).toBe("https://latchkey.example.com");
    expect(job.env.LATCHKEY_VAULT_ID).toBe("00000000-0000-4000-8000-000000000000");
    expect(answer.workflow).toContain("# placeholder: your Latchkey server's URL");
    expect(job.steps.at(-1)!.run).toBe("npx latchkey run --oidc --org acme --env production -- npm test");

    const text = context();
    expect(await runCli(["setup", "ci", "--oidc", "--provider", "gitlab"], text)).toBe(0);
    expect(text.stderr.text()).toContain("Placeholders stand for the server's URL");
  });

  it("needs --oidc and --provider; `setup ci npmrc` keeps its --json and --registry", async () => {
    const bare = context();
    expect(await runCli(["setup", "ci"], bare)).toBe(2);
    expect(bare.stderr.text()).toContain("setup ci needs a subcommand (npmrc) or --oidc");
    const noProvider = context();
    expect(await runCli(["setup", "ci", "--oidc"], noProvider)).toBe(2);
    expect(noProvider.stderr.text()).toContain("--provider github or --provider gitlab");

    const npmrc = context();
    expect(
      await runCli(["setup", "ci", "npmrc", "--json", "--registry", "https://npm.example.com/"], npmrc),
    ).toBe(0);
    expect(JSON.parse(npmrc.stdout.text())).toMatchObject({ npmrc: join(home, ".npmrc") });
    expect(await readFile(join(home, ".npmrc"), "utf8")).toContain("//npm.example.com/:_authToken=${");
  });
});

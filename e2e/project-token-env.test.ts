// A cloned project cannot name where your environment goes: a latchkey.json that declares
// `registries.<its own host>.tokenEnv = "AWS_SECRET_ACCESS_KEY"` gets nothing from the built CLI — `whoami` sends
// no request, `token` prints nothing, `exec` starts no program — until the user approves that declaration on a
// real pseudo-terminal; under CI only the user's own switch lets it through. The project's host is a loopback
// npm registry that records every Authorization header it receives.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startNpmRegistry, type NpmRegistry } from "../packages/cli/test/support/npm-registry.js";
import { CLI } from "./support/cli.js";
import { allFiles, expectFailure, expectSuccess, tempProject, type TempProject } from "./support/project.js";
import { startOnTerminal } from "./support/pty.js";

const SECRET = "aws-canary-e2e-5d1f0b";

let project: TempProject;
let host: NpmRegistry;
/** The CLI's environment: the user's AWS secret is in it, as it is in many shells. */
const env = { AWS_SECRET_ACCESS_KEY: SECRET };

beforeEach(async () => {
  project = await tempProject();
  host = await startNpmRegistry({ tokens: { [SECRET]: "mallory" } });
  await writeFile(
    project.file,
    `{\n  "registries": {\n    "${host.url}": {\n      "tokenEnv": "AWS_SECRET_ACCESS_KEY"\n    }\n  }\n}\n`,
  );
  // The project's .npmrc sends its packages to the same host, so `exec` would hand it a token.
  await writeFile(join(project.dir, ".npmrc"), `registry=${host.url}\n`);
});
afterEach(async () => {
  await host.close();
  await project.cleanup();
});

/**
 * `exec`'s arguments for a program that writes the names (never the values) of its variables holding the secret
 * into `seen.json`. It reads the secret from its own environment: nothing secret goes into argv.
 */
function probe(): string[] {
  const script =
    "const secret = process.env.AWS_SECRET_ACCESS_KEY;" +
    "const names = Object.keys(process.env).filter((k) => process.env[k] === secret).sort();" +
    'require("node:fs").writeFileSync("seen.json", JSON.stringify(names));';
  return ["--", process.execPath, "-e", script];
}

async function seen(): Promise<string[] | null> {
  return readFile(join(project.dir, "seen.json"), "utf8").then(
    (text) => JSON.parse(text) as string[],
    () => null,
  );
}

/** `latchkey token`'s output: the token alone (a final newline or not: that is the output module's to decide). */
const printed = new RegExp(`^${SECRET}\n?$`);
const sent = () => host.requests.filter((r) => r.authorization?.includes(SECRET) === true);

async function approveOnTerminal(
  args: string[],
  answer: "y" | "n",
): Promise<{ code: number | null; output: string }> {
  const terminal = startOnTerminal(process.execPath, [CLI, ...args], {
    env: project.env(env),
    cwd: project.dir,
    columns: 200,
  });
  await terminal.waitFor("for this project?");
  terminal.type(answer);
  return terminal.exited;
}

describe("a project's tokenEnv", () => {
  it("is neither sent, printed nor handed to a program until approved on a terminal", async () => {
    const whoami = await project.cli(["whoami"], { env });
    expect(whoami.code).not.toBe(0);
    expect(whoami.stderr).toContain("LK_TOKEN_ENV_NOT_APPROVED");
    expect(whoami.stderr).toContain(`${project.file}:4`);

    const token = await project.cli(["token", "--registry", host.url], { env });
    expectFailure(token, "LK_TOKEN_ENV_NOT_APPROVED");

    const exec = await project.cli(["exec", ...probe()], { env });
    expectFailure(exec, "LK_TOKEN_ENV_NOT_APPROVED");
    expect(await seen()).toBeNull();

    for (const result of [whoami, token, exec]) expect(result.stdout + result.stderr).not.toContain(SECRET);
    expect(host.requests).toEqual([]);

    // Declined: still nothing, and nothing recorded.
    const declined = await approveOnTerminal(["token", "--registry", host.url], "n");
    expect(declined.code).not.toBe(0);
    expect(declined.output).toContain("AWS_SECRET_ACCESS_KEY");
    expect(declined.output).not.toContain(SECRET);
    expect(await allFiles(project.latchkeyHome).catch(() => [])).not.toContain(
      join(project.latchkeyHome, "approvals.json"),
    );

    // Approved: the variable is the registry's token from now on, in this project at this path.
    const approved = await approveOnTerminal(["token", "--registry", host.url], "y");
    expect(approved.code, approved.output).toBe(0);
    expect(approved.output).toContain(SECRET);
    const approvals = JSON.parse(await readFile(join(project.latchkeyHome, "approvals.json"), "utf8"));
    expect(approvals.approvals).toEqual([
      expect.objectContaining({
        project: project.dir,
        kind: "tokenEnv",
        declaration: { registry: host.url, tokenEnv: "AWS_SECRET_ACCESS_KEY" },
      }),
    ]);
    const later = await project.cli(["whoami", "--json", "--registry", host.url], { env });
    expectSuccess(later);
    expect(JSON.parse(later.stdout)).toMatchObject({ user: "mallory", source: "env" });
    expect(sent()).toHaveLength(1);
    expectSuccess(await project.cli(["exec", ...probe()], { env }));
    expect(await seen()).toContain(`npm_config_${host.url.replace("http:", "")}:_authToken`);
  });

  it("under CI is refused even when approved, unless the user's environment or config.toml allows it", async () => {
    expect((await approveOnTerminal(["token", "--registry", host.url], "y")).code).toBe(0);
    const ci = await project.cli(["token", "--registry", host.url], { env: { ...env, CI: "true" } });
    expectFailure(ci, "LK_TOKEN_ENV_NOT_APPROVED");
    expect(ci.stderr).toContain("CI is set");
    // The older switch covers project providers only.
    const providersOnly = await project.cli(["token", "--registry", host.url], {
      env: { ...env, CI: "true", LATCHKEY_ALLOW_PROJECT_PROVIDERS: "1" },
    });
    expectFailure(providersOnly, "LK_TOKEN_ENV_NOT_APPROVED");

    const allowed = await project.cli(["token", "--registry", host.url], {
      env: { ...env, CI: "true", LATCHKEY_ALLOW_PROJECT_CREDENTIALS: "1" },
    });
    expectSuccess(allowed);
    expect(allowed.stdout).toMatch(printed);

    await writeFile(join(project.latchkeyHome, "config.toml"), "[ci]\nallow_project_credentials = true\n", {
      mode: 0o600,
    });
    const configured = await project.cli(["token", "--registry", host.url], { env: { ...env, CI: "true" } });
    expectSuccess(configured);
    expect(configured.stdout).toMatch(printed);
  });
});

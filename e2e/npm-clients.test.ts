// What npm 11, yarn 1 and yarn 4 read, proved against verdaccio (authentication required to read): the evidence
// behind registry/handoff.ts. Each claim is one install attempt in a fresh sandbox (new HOME, caches, TMPDIR), next
// to a control that fails without the credential.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI } from "./support/cli.js";
import {
  CLIENTS,
  NODE,
  attemptInstall,
  startClaimsRegistry,
  run,
  type Client,
  type InstallAttempt,
  type InstallAttemptOptions,
} from "./support/package-managers.js";
import type { Verdaccio } from "./support/verdaccio.js";

let verdaccio: Verdaccio;
let tmp: { path: string; cleanup: () => Promise<void> };
let token: string;

beforeAll(async () => {
  ({ verdaccio, tmp, token } = await startClaimsRegistry(
    "lk-e2e-npm-clients-",
    "erin",
    "npm-claims-password-1",
  ));
});

afterAll(async () => {
  await verdaccio?.stop();
  await tmp?.cleanup();
});

function attempt(
  client: Client,
  options: Omit<InstallAttemptOptions, "client" | "registryUrl"> = {},
): Promise<InstallAttempt> {
  return attemptInstall(tmp.path, { client, registryUrl: verdaccio.url, ...options });
}

describe(`npm ${CLIENTS.npm11.version}`, () => {
  it("cannot install without a credential (control)", async () => {
    const a = await attempt(CLIENTS.npm11);
    expect(a.installed).toBe(false);
    expect(a.output).toMatch(/E401|authorization required/i);
  });

  it.each(["npm_config_", "NPM_CONFIG_"])(
    "reads %s//host:port/:_authToken from the environment",
    async (prefix) => {
      const a = await attempt(CLIENTS.npm11, {
        env: { [`${prefix}${verdaccio.nerfDart}:_authToken`]: token },
      });
      expect(a.installed, a.output).toBe(true);
    },
  );

  it("keeps the key's case: npm_config_//host/:_authtoken is not the token", async () => {
    const a = await attempt(CLIENTS.npm11, {
      env: { [`npm_config_${verdaccio.nerfDart}:_authtoken`]: token },
    });
    expect(a.installed).toBe(false);
  });

  it("expands ${VAR} in a credential from the project .npmrc", async () => {
    const a = await attempt(CLIENTS.npm11, {
      projectNpmrc: `${verdaccio.nerfDart}:_authToken=\${LK_CLAIM_TOKEN}\n`,
      env: { LK_CLAIM_TOKEN: token },
    });
    expect(a.installed, a.output).toBe(true);
  });
});

describe(`yarn ${CLIENTS.yarn1.version}`, () => {
  it("cannot install without a credential (control)", async () => {
    const a = await attempt(CLIENTS.yarn1, { args: ["install", "--non-interactive"] });
    expect(a.installed).toBe(false);
    expect(a.output).toContain("authorization required");
  });

  it.each(["npm_config_", "NPM_CONFIG_", "YARN_"])(
    "reads no %s//host:port/:_authToken from the environment (keys are lower-cased and split at dots)",
    async (prefix) => {
      const a = await attempt(CLIENTS.yarn1, {
        args: ["install", "--non-interactive"],
        env: { [`${prefix}${verdaccio.nerfDart}:_authToken`]: token },
      });
      expect(a.installed).toBe(false);
      expect(a.output).toContain("authorization required");
    },
  );

  it("expands ${VAR} in an .npmrc, and fails closed when the variable is unset", async () => {
    const line = `${verdaccio.nerfDart}:_authToken=\${LK_CLAIM_TOKEN}\n`;
    const set = await attempt(CLIENTS.yarn1, {
      args: ["install", "--non-interactive"],
      userNpmrc: line,
      env: { LK_CLAIM_TOKEN: token },
    });
    expect(set.installed, set.output).toBe(true);
    const unset = await attempt(CLIENTS.yarn1, { args: ["install", "--non-interactive"], userNpmrc: line });
    expect(unset.installed).toBe(false);
    expect(unset.output).toContain("Failed to replace env in config: ${LK_CLAIM_TOKEN}");
  });
});

describe(`yarn ${CLIENTS.yarn4.version}`, () => {
  // yarn 2+ reads no .npmrc: the scope's registry is in .yarnrc.yml, and a just-published package is let through
  // its minimum-age gate.
  const yarnrc = (extra = ""): Record<string, string> => ({
    ".yarnrc.yml":
      `npmScopes:\n  lk-test:\n    npmRegistryServer: "${verdaccio.url}"\n` +
      `unsafeHttpWhitelist:\n  - "127.0.0.1"\nnpmPreapprovedPackages:\n  - "@lk-test/*"\n${extra}`,
    "yarn.lock": "",
  });

  it("cannot install without a credential, and reads no npm_config_ token (control)", async () => {
    for (const env of [{}, { [`npm_config_${verdaccio.nerfDart}:_authToken`]: token }]) {
      const a = await attempt(CLIENTS.yarn4, { files: yarnrc(), env });
      expect(a.installed).toBe(false);
      expect(a.output).toContain("Invalid authentication (as an anonymous user)");
    }
  });

  it("reads YARN_NPM_AUTH_TOKEN, the one token for every registry without its own", async () => {
    const a = await attempt(CLIENTS.yarn4, { files: yarnrc(), env: { YARN_NPM_AUTH_TOKEN: token } });
    expect(a.installed, a.output).toBe(true);
  });

  it("refuses per-registry maps from the environment", async () => {
    const a = await attempt(CLIENTS.yarn4, {
      files: yarnrc(),
      env: { YARN_NPM_REGISTRIES: JSON.stringify({ [verdaccio.nerfDart]: { npmAuthToken: token } }) },
    });
    expect(a.installed).toBe(false);
    expect(a.output).toContain('Map configuration settings "npmRegistries" must be an object');
  });

  it("installs through latchkey exec with .yarnrc.yml's npmAuthToken naming the hand-off variable", async () => {
    // The variable's name, as `latchkey setup npmrc` prints it.
    const lkHome = join(tmp.path, "lk-home-yarn4");
    const base = {
      PATH: process.env.PATH,
      HOME: tmp.path,
      LATCHKEY_HOME: lkHome,
      LATCHKEY_KEYSTORE: "file",
      DBUS_SESSION_BUS_ADDRESS: "unix:path=/nonexistent",
      npm_config_userconfig: join(tmp.path, "yarn4-unused-npmrc"),
    };
    const named = await run(NODE, [CLI, "setup", "npmrc", "--json", "--registry", verdaccio.url], {
      env: base,
      cwd: tmp.path,
    });
    expect(named.code, named.stderr).toBe(0);
    const variable = (JSON.parse(named.stdout) as { registries: { variable: string }[] }).registries[0]!
      .variable;
    const stored = await run(NODE, [CLI, "keystore", "set", `registry:${verdaccio.nerfDart}`], {
      env: base,
      cwd: tmp.path,
      input: token,
    });
    expect(stored.code, stored.stderr).toBe(0);

    const files = yarnrc(`npmRegistries:\n  "${verdaccio.nerfDart}":\n    npmAuthToken: "\${${variable}}"\n`);
    const { PATH: _path, HOME: _home, ...lk } = base;
    const control = await attempt(CLIENTS.yarn4, { files, env: { ...lk, [variable]: "" } });
    expect(control.installed).toBe(false);
    const a = await attempt(CLIENTS.yarn4, {
      files,
      env: lk,
      via: { command: NODE, args: [CLI, "exec", "--"] },
    });
    expect(a.installed, a.output).toBe(true);
  });
});

describe("shells between latchkey exec and the client", () => {
  it("Debian's /bin/sh (dash) drops npm_config_//host/:_authToken but keeps LATCHKEY_TOKEN_* variables", () => {
    const shell = spawnSync("readlink", ["-f", "/bin/sh"], { encoding: "utf8" }).stdout.trim();
    const env = { PATH: "/usr/bin:/bin", "npm_config_//h:1/:_authToken": "x", LATCHKEY_TOKEN_H_1: "y" };
    const seen = spawnSync("/bin/sh", ["-c", "env"], { env, encoding: "utf8" }).stdout;
    expect(seen).toContain("LATCHKEY_TOKEN_H_1=y");
    if (shell.endsWith("dash")) expect(seen).not.toContain("npm_config_//h:1/");
    const bash = spawnSync("bash", ["-c", "env"], { env, encoding: "utf8" });
    if (bash.status === 0) expect(bash.stdout).toContain("npm_config_//h:1/:_authToken=x");
  });
});

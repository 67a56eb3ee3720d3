// What pnpm 10 and pnpm 12 read, proved against verdaccio (authentication required to read): the evidence behind
// registry/handoff.ts. Each claim is one install attempt in a fresh sandbox (new HOME, cache and store), with a
// control that fails without the credential, so no attempt passes on a cache or an open registry.
import { randomInt } from "node:crypto";
import { chmod, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI } from "./support/cli.js";
import {
  CLIENTS,
  NODE,
  attemptInstall,
  publishTestPackage,
  startClaimsRegistry,
  run,
  type Client,
  type InstallAttempt,
} from "./support/package-managers.js";
import { startVerdaccio, type Verdaccio } from "./support/verdaccio.js";

let verdaccio: Verdaccio;
let tmp: { path: string; cleanup: () => Promise<void> };
let token: string;

beforeAll(async () => {
  ({ verdaccio, tmp, token } = await startClaimsRegistry(
    "lk-e2e-pnpm-clients-",
    "carol",
    "pnpm-claims-password-1",
  ));
});

afterAll(async () => {
  await verdaccio?.stop();
  await tmp?.cleanup();
});

/** A tokenHelper script in the attempt's own directory that prints `line` (the token, bare or as a header). */
async function helper(name: string, line: string): Promise<string> {
  const file = join(tmp.path, `helper-${name}`);
  await writeFile(file, `#!/bin/sh\nprintf '%s\\n' '${line}'\n`);
  await chmod(file, 0o700);
  return file;
}

function attempt(
  client: Client,
  options: Omit<Parameters<typeof attemptInstall>[1], "client" | "registryUrl">,
): Promise<InstallAttempt> {
  return attemptInstall(tmp.path, { client, registryUrl: verdaccio.url, ...options });
}

function expectUnauthorized(a: InstallAttempt): void {
  expect(a.installed).toBe(false);
  expect(a.result.code).not.toBe(0);
  expect(a.output).toMatch(/401|Unauthorized/);
}

describe.each([
  ["pnpm 10", CLIENTS.pnpm10],
  ["pnpm 12", CLIENTS.pnpm12],
])("%s", (_name, client) => {
  it("runs the pinned version", () => {
    expect(client.version).toMatch(client === CLIENTS.pnpm10 ? /^10\./ : /^12\./);
  });

  it("cannot install without a credential (control)", async () => {
    expectUnauthorized(await attempt(client, {}));
  });

  it("uses a tokenHelper's `Bearer <token>` from the user .npmrc", async () => {
    const file = await helper(`bearer`, `Bearer ${token}`);
    const a = await attempt(client, { userNpmrc: `${verdaccio.nerfDart}:tokenHelper=${file}\n` });
    expect(a.installed, a.output).toBe(true);
  });

  it("does not use a tokenHelper from the project .npmrc", async () => {
    const file = await helper(`project`, `Bearer ${token}`);
    const a = await attempt(client, { projectNpmrc: `${verdaccio.nerfDart}:tokenHelper=${file}\n` });
    expect(a.installed).toBe(false);
    if (client === CLIENTS.pnpm12)
      expect(a.output).toContain("tokenHelper must not be configured in project-level .npmrc");
    else expectUnauthorized(a); // pnpm 10 ignores it silently
  });

  it("does not expand ${VAR} in a credential from the project .npmrc, but does from the user .npmrc", async () => {
    const line = `${verdaccio.nerfDart}:_authToken=\${LK_CLAIM_TOKEN}\n`;
    const project = await attempt(client, { projectNpmrc: line, env: { LK_CLAIM_TOKEN: token } });
    expect(project.installed).toBe(false);
    expect(project.output).toContain("Ignored project-level auth setting");
    const user = await attempt(client, { userNpmrc: line, env: { LK_CLAIM_TOKEN: token } });
    expect(user.installed, user.output).toBe(true);
  });
});

describe("pnpm 10 specifics", () => {
  it("uses a tokenHelper's output as the whole header: a bare token is refused", async () => {
    const file = await helper("bare10", token);
    const a = await attempt(CLIENTS.pnpm10, { userNpmrc: `${verdaccio.nerfDart}:tokenHelper=${file}\n` });
    expectUnauthorized(a);
    expect(a.output).toContain("An authorization header was used");
  });

  it("reads no npm_config_//host:port/:_authToken from the environment (its key parser splits at the port)", async () => {
    const a = await attempt(CLIENTS.pnpm10, {
      env: { [`npm_config_${verdaccio.nerfDart}:_authToken`]: token },
    });
    expectUnauthorized(a);
    expect(a.output).toContain("No authorization header was set");
  });
});

describe("pnpm 12 specifics", () => {
  it("accepts a bare token from a tokenHelper", async () => {
    const file = await helper("bare12", token);
    const a = await attempt(CLIENTS.pnpm12, { userNpmrc: `${verdaccio.nerfDart}:tokenHelper=${file}\n` });
    expect(a.installed, a.output).toBe(true);
  });

  it.each(["npm_config_", "pnpm_config_", "NPM_CONFIG_"])(
    "reads %s//host:port/:_authToken from the environment",
    async (prefix) => {
      const a = await attempt(CLIENTS.pnpm12, {
        env: { [`${prefix}${verdaccio.nerfDart}:_authToken`]: token },
      });
      expect(a.installed, a.output).toBe(true);
    },
  );

  it("installs through latchkey exec (token from the environment latchkey sets, nothing written)", async () => {
    const lkHome = join(tmp.path, "lk-home-exec12");
    const base = {
      LATCHKEY_HOME: lkHome,
      LATCHKEY_KEYSTORE: "file",
      DBUS_SESSION_BUS_ADDRESS: "unix:path=/nonexistent",
    };
    // Stored with the keystore plumbing (the value on stdin), as `latchkey login` would after checking it.
    const stored = await run(NODE, [CLI, "keystore", "set", `registry:${verdaccio.nerfDart}`], {
      env: { PATH: process.env.PATH, HOME: tmp.path, ...base },
      cwd: tmp.path,
      input: token,
    });
    expect(stored.code, stored.stderr).toBe(0);
    const a = await attempt(CLIENTS.pnpm12, { env: base, via: { command: NODE, args: [CLI, "exec", "--"] } });
    expect(a.installed, a.output).toBe(true);
  });
});

// A nerf dart without a port needs port 80: a privileged port, there for root (as in CI) and not otherwise.
const root = process.getuid?.() === 0;
if (!root && process.env.CI === "true")
  throw new Error("pnpm-clients: the port-80 claims need root under CI=true");
(root ? describe : describe.skip)(
  "pnpm 10 with a registry without a port (verdaccio on 127.x.y.z:80)",
  () => {
    let portless: Verdaccio;
    let portlessToken: string;
    beforeAll(async () => {
      // A loopback address of its own (all of 127/8 reaches lo), so port 80 is free whatever else runs.
      const octet = (): number => 1 + randomInt(250);
      portless = await startVerdaccio({ host: `127.${octet()}.${octet()}.${octet()}`, port: 80 });
      portlessToken = await portless.addUser("dave", "pnpm-claims-password-2");
      await publishTestPackage(tmp.path, portless.url, portless.nerfDart, portlessToken);
    });
    afterAll(async () => {
      await portless?.stop();
    });

    it("reads npm_config_//host/:_authToken from the environment", async () => {
      const base = { client: CLIENTS.pnpm10, registryUrl: portless.url };
      const control = await attemptInstall(tmp.path, base);
      expect(control.installed).toBe(false);
      const a = await attemptInstall(tmp.path, {
        ...base,
        env: { [`npm_config_${portless.nerfDart}:_authToken`]: portlessToken },
      });
      expect(a.installed, a.output).toBe(true);
    });
  },
);

// docker-credential-latchkey through the built bin, run as a process the way docker runs it: the protocol on the
// encrypted file store and on a real Secret Service, then the real docker CLI (no daemon: `docker login` and
// `docker manifest inspect` work client-side) against a real registry (distribution) that requires a password.
import { spawn } from "node:child_process";
import { readFile, mkdir, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  secretServiceAvailable,
  startSecretService,
  type SecretServiceSession,
} from "../packages/cli/test/support/secret-service.js";
import { NO_DBUS, collect, isolatedEnv, runCli, tempDir, type CliResult } from "./support/cli.js";
import { dockerToolsAvailable, startDockerRegistry, type DockerRegistry } from "./support/docker-registry.js";
import { allFiles } from "./support/project.js";

/** The installed helper: the bin launcher over dist/docker-credential.mjs. */
const HELPER = fileURLToPath(new URL("../packages/cli/bin/docker-credential-latchkey.mjs", import.meta.url));
const CANARY = "docker-canary-Secret-7c41e9";
const mustRun = process.env.CI === "true";

function helper(
  action: string[],
  input: string,
  env: Record<string, string | undefined>,
): Promise<CliResult> {
  const child = spawn(process.execPath, [HELPER, ...action], { env, stdio: ["pipe", "pipe", "pipe"] });
  child.stdin.on("error", () => undefined);
  child.stdin.end(input);
  return collect(child);
}

/** Every file under `root` whose bytes contain `needle`. */
async function filesContaining(root: string, needle: string): Promise<string[]> {
  const hits: string[] = [];
  for (const file of await allFiles(root)) {
    if ((await readFile(file)).includes(needle)) hits.push(file);
  }
  return hits;
}

describe("docker-credential-latchkey protocol on the file store", () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let env: Record<string, string | undefined>;
  beforeEach(async () => {
    dir = await tempDir("lk-e2e-docker-");
    env = isolatedEnv({
      HOME: dir.path,
      LATCHKEY_HOME: join(dir.path, "latchkey-home"),
      LATCHKEY_KEYSTORE: "file",
      DBUS_SESSION_BUS_ADDRESS: NO_DBUS,
    });
  });
  afterEach(() => dir.cleanup());

  it("stores, gets, lists and erases; the secret is only in the encrypted store", async () => {
    const creds = { ServerURL: "https://registry.example.com", Username: "alice", Secret: CANARY };
    const store = await helper(["store"], `${JSON.stringify(creds)}\n`, env);
    expect(store, store.stderr).toMatchObject({ code: 0, stdout: "", stderr: "" });

    const get = await helper(["get"], "https://registry.example.com\n", env);
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toBe(`${JSON.stringify(creds)}\n`);

    await helper(["store"], JSON.stringify({ ServerURL: "ghcr.io", Username: "bob", Secret: "other" }), env);
    const list = await helper(["list"], "unused", env);
    expect(JSON.parse(list.stdout)).toEqual({ "https://registry.example.com": "alice", "ghcr.io": "bob" });

    // The keystore holds them under docker:<serverURL>, as `latchkey keystore list` shows.
    const accounts = await runCli(["keystore", "list"], { env });
    expect(accounts.stdout.trim().split("\n")).toEqual([
      "docker:ghcr.io",
      "docker:https://registry.example.com",
    ]);
    expect(await filesContaining(dir.path, CANARY)).toEqual([]);

    const erase = await helper(["erase"], "https://registry.example.com", env);
    expect(erase).toMatchObject({ code: 0, stdout: "" });
    const miss = await helper(["get"], "https://registry.example.com", env);
    expect(miss).toMatchObject({ code: 1, stdout: "credentials not found in native keychain\n", stderr: "" });
  });

  it("refuses malformed JSON without echoing it and stores nothing", async () => {
    const bad = await helper(["store"], `{"ServerURL":"ghcr.io","Username":"u","Secret":"${CANARY}"`, env);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toMatch(/^LK_HELPER_INPUT_INVALID: /);
    expect(bad.stderr).toContain("error LK_HELPER_INPUT_INVALID");
    expect(bad.stdout + bad.stderr).not.toContain(CANARY);
    const list = await helper(["list"], "", env);
    expect(list.stdout).toBe("{}\n");
  });

  it("answers the version and usage the way docker-credential-helpers does", async () => {
    expect((await helper(["version"], "", env)).stdout).toMatch(
      /^docker-credential-latchkey \(latchkey\) \S+\n$/,
    );
    const usage = await helper([], "", env);
    expect(usage.code).toBe(2);
    expect(usage.stdout).toBe("Usage: docker-credential-latchkey <store|get|erase|list|version>\n");
  });
});

const keychain = secretServiceAvailable();
if (!keychain.ok && !mustRun) console.warn(`skipping the docker helper keychain suite: ${keychain.reason}`);

describe.skipIf(!keychain.ok)("docker-credential-latchkey on a real Secret Service", () => {
  let session: SecretServiceSession;
  let dir: { path: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    session = await startSecretService({ variant: "unlocked" });
    dir = await tempDir("lk-e2e-docker-keyring-");
  });
  afterAll(async () => {
    await session?.stop();
    await dir?.cleanup();
  });

  it("keeps the credentials in the keychain under service latchkey, account docker:<serverURL>", async () => {
    const env = isolatedEnv({ ...session.env, LATCHKEY_HOME: join(dir.path, "latchkey-home") });
    const creds = { ServerURL: "registry.keyring.example:5000", Username: "carol", Secret: CANARY };
    const store = await helper(["store"], JSON.stringify(creds), env);
    expect(store.code, store.stderr).toBe(0);
    const item = await session.secretToolLookup({
      service: "latchkey",
      username: "docker:registry.keyring.example:5000",
    });
    expect(JSON.parse(item ?? "null")).toEqual({ Username: "carol", Secret: CANARY });
    expect(await filesContaining(dir.path, CANARY)).toEqual([]);

    const get = await helper(["get"], "registry.keyring.example:5000", env);
    expect(JSON.parse(get.stdout)).toEqual(creds);
    expect((await helper(["erase"], "registry.keyring.example:5000", env)).code).toBe(0);
    expect(
      await session.secretToolLookup({
        service: "latchkey",
        username: "docker:registry.keyring.example:5000",
      }),
    ).toBeNull();
    expect((await helper(["get"], "registry.keyring.example:5000", env)).code).toBe(1);
  });
});

const tools = dockerToolsAvailable();
if (!tools.ok && !mustRun) console.warn(`skipping the docker CLI suite: ${tools.reason}`);

describe("docker CLI prerequisites", () => {
  it.runIf(mustRun)("are installed in CI (a skipped docker suite is a failure there)", () => {
    expect(tools.reason ?? "available").toBe("available");
    expect(keychain.reason ?? "available").toBe("available");
  });
});

describe.skipIf(!tools.ok)("the docker CLI with credsStore latchkey against a real registry", () => {
  const PASSWORD = `${CANARY}-registry`;
  let dir: { path: string; cleanup: () => Promise<void> };
  let registry: DockerRegistry;
  let env: Record<string, string | undefined>;

  beforeAll(async () => {
    dir = await tempDir("lk-e2e-docker-cli-");
    registry = await startDockerRegistry(join(dir.path, "registry"), "alice", PASSWORD);
    await registry.pushImage("team/app", "1.0");
    // docker finds `docker-credential-<credsStore>` on PATH; the link is what `npm install -g` would create.
    const bin = join(dir.path, "bin");
    await mkdir(bin);
    await symlink(HELPER, join(bin, "docker-credential-latchkey"));
    const dockerConfig = join(dir.path, "docker-config");
    await mkdir(dockerConfig);
    await writeFile(join(dockerConfig, "config.json"), '{ "credsStore": "latchkey" }\n');
    env = isolatedEnv({
      // The bin's `#!/usr/bin/env node` must find the Node the project runs on.
      PATH: [bin, dirname(process.execPath), process.env.PATH].join(":"),
      HOME: join(dir.path, "home"),
      DOCKER_CONFIG: dockerConfig,
      // Never a real daemon: docker then logs in client-side, as it does when none is running.
      DOCKER_HOST: "unix:///nonexistent/latchkey-test-docker.sock",
      LATCHKEY_HOME: join(dir.path, "latchkey-home"),
      LATCHKEY_KEYSTORE: "file",
      DBUS_SESSION_BUS_ADDRESS: NO_DBUS,
    });
    await mkdir(join(dir.path, "home"));
  });
  afterAll(async () => {
    await registry?.stop();
    await dir?.cleanup();
  });

  function docker(args: string[], input = ""): Promise<CliResult> {
    const child = spawn("docker", args, { env, stdio: ["pipe", "pipe", "pipe"] });
    child.stdin.on("error", () => undefined);
    child.stdin.end(input);
    return collect(child);
  }

  it("a wrong password is refused by the registry and nothing is stored", async () => {
    const login = await docker(
      ["login", registry.host, "-u", "alice", "--password-stdin"],
      "wrong-password\n",
    );
    expect(login.code).not.toBe(0);
    expect(login.stderr).toMatch(/401|unauthorized/i);
    expect((await helper(["list"], "", env)).stdout).toBe("{}\n");
  });

  it("docker login stores through the helper, manifest inspect reads through it, logout erases", async () => {
    const login = await docker(["login", registry.host, "-u", "alice", "--password-stdin"], `${PASSWORD}\n`);
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toContain("Login Succeeded");

    // config.json names the server and no credentials; the keystore has them.
    const config = JSON.parse(await readFile(join(env.DOCKER_CONFIG!, "config.json"), "utf8"));
    expect(config).toEqual({ auths: { [registry.host]: {} }, credsStore: "latchkey" });
    const stored = await helper(["get"], registry.host, env);
    expect(JSON.parse(stored.stdout)).toEqual({
      ServerURL: registry.host,
      Username: "alice",
      Secret: PASSWORD,
    });

    // The registry answers only with the password, which docker has only from the helper.
    const inspect = await docker(["manifest", "inspect", "--insecure", `${registry.host}/team/app:1.0`]);
    expect(inspect.code, inspect.stderr).toBe(0);
    expect(JSON.parse(inspect.stdout)).toMatchObject({ schemaVersion: 2, layers: [] });

    // No file anywhere under the test's directories holds the password (the file store is encrypted).
    expect(await filesContaining(dir.path, PASSWORD)).toEqual([]);

    // What the helper answers is what docker sends: a wrong secret in the keystore makes the registry refuse.
    await helper(
      ["store"],
      JSON.stringify({ ServerURL: registry.host, Username: "alice", Secret: "not-it" }),
      env,
    );
    const refused = await docker(["manifest", "inspect", "--insecure", `${registry.host}/team/app:1.0`]);
    expect(refused.code).not.toBe(0);
    // docker reports the registry's 401 on a manifest as "no such manifest".
    expect(refused.stdout).toBe("");

    const logout = await docker(["logout", registry.host]);
    expect(logout.code, logout.stderr).toBe(0);
    expect((await helper(["list"], "", env)).stdout).toBe("{}\n");
    const anonymous = await docker(["manifest", "inspect", "--insecure", `${registry.host}/team/app:1.0`]);
    expect(anonymous.code).not.toBe(0);
    expect(anonymous.stderr).toContain("no basic auth credentials");
  });
});

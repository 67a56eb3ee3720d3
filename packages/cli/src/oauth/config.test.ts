import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LatchkeyError } from "@latchkey/core";
import { createTestContext } from "../../test/support/context.js";
import { resolvePaths } from "../paths.js";
import {
  assertSecureEndpoint,
  listEnvironments,
  loadEnvironment,
  readEnvironmentSecret,
  selectProfile,
} from "./config.js";

let root: string;
let home: string;
let project: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-oauth-config-"));
  home = join(root, "lk-home");
  project = join(root, "project");
  await mkdir(home);
  await mkdir(join(project, ".git"), { recursive: true });
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function context(config: string | null, env: Record<string, string> = {}) {
  const full = { LATCHKEY_HOME: home, HOME: root, ...env };
  return {
    ctx: createTestContext({ env: full, cwd: project, paths: resolvePaths(full) }),
    write: () => (config === null ? Promise.resolve() : writeFile(join(home, "config.toml"), config)),
  };
}

async function load(config: string, env = "svc", profile = "default", vars: Record<string, string> = {}) {
  const { ctx, write } = context(config, vars);
  await write();
  return loadEnvironment(ctx, profile, env);
}

async function rejection(promise: Promise<unknown>): Promise<LatchkeyError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(LatchkeyError);
  return error as LatchkeyError;
}

const base = 'issuer = "https://login.example.com"\nclient_id = "svc"\nclient_secret_env = "SVC_SECRET"\n';

describe("assertSecureEndpoint", () => {
  it("accepts https anywhere and http only on loopback", () => {
    for (const ok of [
      "https://login.example.com",
      "http://127.0.0.1:8080/x",
      "http://[::1]:9/",
      "http://localhost/",
    ]) {
      expect(() => assertSecureEndpoint(ok)).not.toThrow();
    }
    for (const bad of ["http://login.example.com", "http://127.0.0.2/", "ftp://127.0.0.1/", "not a url"]) {
      expect(() => assertSecureEndpoint(bad)).toThrow(LatchkeyError);
    }
  });
});

describe("loadEnvironment", () => {
  it("parses a full environment", async () => {
    const env = await load(
      `[environments.svc]\n${base}grant = "client_credentials"\nscopes = "a b"\naudience = "https://api"\nresource = ["https://api/", "https://other/"]\n`,
    );
    expect(env).toMatchObject({
      name: "svc",
      profile: "default",
      issuer: "https://login.example.com",
      clientId: "svc",
      clientSecretEnv: "SVC_SECRET",
      grant: "client_credentials",
      scopes: ["a", "b"],
      audience: "https://api",
      resource: ["https://api/", "https://other/"],
      key: "environments.svc",
    });
  });

  it("prefers the profile's own environment over the global one", async () => {
    const env = await load(
      `[environments.svc]\n${base}[profiles.work.environments.svc]\n${base.replace('"svc"', '"work-svc"')}`,
      "svc",
      "work",
    );
    expect(env).toMatchObject({
      clientId: "work-svc",
      key: "profiles.work.environments.svc",
      profile: "work",
    });
  });

  it.each([
    [
      'issuer = "http://login.example.com"\nclient_id = "x"\nclient_secret_env = "S"',
      "environments.svc.issuer",
      "https",
    ],
    [
      'token_endpoint = "http://10.0.0.1/token"\nclient_id = "x"\nclient_secret_env = "S"',
      "environments.svc.token_endpoint",
      "https",
    ],
    [`${base}token_endpoint = "https://x/token"`, "environments.svc", "exactly one of issuer"],
    ['issuer = "https://x"\nclient_secret_env = "S"', "environments.svc.client_id", "required"],
    [`${base}grant = "implicit"`, "environments.svc.grant", "client_credentials, authorization_code"],
    [
      'issuer = "https://x"\nclient_id = "x"',
      "environments.svc.client_secret_env",
      "client_credentials grant needs",
    ],
    [`${base.replace("SVC_SECRET", "not a name")}`, "environments.svc.client_secret_env", "variable name"],
    [
      `${base}grant = "password"\nusername = "alice"`,
      "environments.svc.password_env",
      "password grant needs",
    ],
    [`${base}client_secret = "inline"`, "environments.svc.client_secret", "unknown field"],
    [`${base}scopes = 3`, "environments.svc.scopes", "space-separated"],
    [`${base}resource = "not a uri"`, "environments.svc.resource", "RFC 8707"],
  ])("rejects %j naming %s", async (table, key, why) => {
    const error = await rejection(load(`[environments.svc]\n${table}\n`));
    expect(error.code).toBe("LK_CONFIG_INVALID");
    expect(error.message).toContain(join(home, "config.toml"));
    expect(error.message).toContain(`at ${key}`);
    expect(error.message).toContain(why);
  });

  it("lists a profile's own and the global environments", async () => {
    const { ctx, write } = context(
      `[environments.b]\n${base}[profiles.p.environments.a]\n${base}[profiles.q.environments.c]\n${base}`,
    );
    await write();
    expect(await listEnvironments(ctx, "p")).toEqual(["a", "b"]);
    expect(await listEnvironments(ctx, "default")).toEqual(["b"]);
  });

  it("an undeclared environment is LK_OAUTH_ENV_NOT_FOUND", async () => {
    const error = await rejection(load(`[environments.other]\n${base}`));
    expect(error.code).toBe("LK_OAUTH_ENV_NOT_FOUND");
    expect(error.message).toContain('"svc"');
  });

  it("invalid TOML names the file and line, without quoting it", async () => {
    const error = await rejection(load('[environments.svc]\nclient_secret = "s3cr3t-pasted\n'));
    expect(error.code).toBe("LK_CONFIG_INVALID");
    expect(error.message).toContain("config.toml:2:");
    expect(error.message).not.toContain("s3cr3t");
  });
});

describe("selectProfile", () => {
  const profiles = '[profiles.a]\nserver = "https://a.example"\n[profiles.b]\n[profiles.c]\n';

  it("orders --profile > LATCHKEY_PROFILE > latchkey.json > default", async () => {
    await writeFile(join(project, "latchkey.json"), '{ "profile": "c" }');
    const withEnv = context(profiles, { LATCHKEY_PROFILE: "b" });
    await withEnv.write();
    expect(await selectProfile(withEnv.ctx, "a")).toMatchObject({ name: "a", source: "flag" });
    expect(await selectProfile(withEnv.ctx)).toMatchObject({ name: "b", source: "env" });
    const withoutEnv = context(profiles);
    expect(await selectProfile(withoutEnv.ctx)).toMatchObject({ name: "c", source: "project" });
    await writeFile(join(project, "latchkey.json"), "{}");
    expect(await selectProfile(context(profiles).ctx)).toEqual({
      name: "default",
      source: "default",
      profile: {},
    });
  });

  it("a named profile that is not declared is an error; an insecure server is refused", async () => {
    const { ctx, write } = context('[profiles.x]\nserver = "http://latchkey.example.com"\n');
    await write();
    expect((await rejection(selectProfile(ctx, "nope"))).message).toContain("profiles.nope");
    const error = await rejection(selectProfile(ctx, "x"));
    expect(error.message).toContain("at profiles.x.server");
  });
});

describe("readEnvironmentSecret", () => {
  it("reads the variable, else .env.NAME in the project root, else fails naming both", async () => {
    const env = await load(`[environments.svc]\n${base}`);
    const fromVar = context(null, { SVC_SECRET: "from-var" });
    expect(await readEnvironmentSecret(fromVar.ctx, env, "SVC_SECRET", "client secret")).toBe("from-var");

    const sub = join(project, "deep", "dir");
    await mkdir(sub, { recursive: true });
    await writeFile(join(project, ".env.svc"), "OTHER=1\nSVC_SECRET='from-file'\n");
    const fromFile = createTestContext({
      env: { LATCHKEY_HOME: home, HOME: root },
      cwd: sub,
      paths: resolvePaths({ LATCHKEY_HOME: home }),
    });
    expect(await readEnvironmentSecret(fromFile, env, "SVC_SECRET", "client secret")).toBe("from-file");

    await writeFile(join(project, ".env.svc"), "OTHER=1\n");
    const error = await rejection(readEnvironmentSecret(fromFile, env, "SVC_SECRET", "client secret"));
    expect(error.code).toBe("LK_OAUTH_SECRET_MISSING");
    expect(error.message).toContain("SVC_SECRET");
    expect(error.message).toContain(join(project, ".env.svc"));
  });

  it("does not follow a symlinked .env.NAME", async () => {
    const env = await load(`[environments.svc]\n${base}`);
    await writeFile(join(root, "elsewhere"), "SVC_SECRET=linked\n");
    await symlink(join(root, "elsewhere"), join(project, ".env.svc"));
    const error = await rejection(
      readEnvironmentSecret(context(null).ctx, env, "SVC_SECRET", "client secret"),
    );
    expect(error.code).toBe("LK_FILE_SYMLINK");
  });
});

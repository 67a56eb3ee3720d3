import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LatchkeyError, isLatchkeyError } from "@latchkey/core";
import { createTestContext } from "../../test/support/context.js";
import { resolvePaths } from "../paths.js";
import { loadRegistryConfigs, readLoginRecords, updateLoginRecord } from "./config.js";

let root: string;
let home: string;
let project: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-registry-config-"));
  home = join(root, "latchkey-home");
  project = join(root, "project");
  await mkdir(home, { recursive: true });
  await mkdir(join(project, "sub"), { recursive: true });
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function context(cwd = project, os?: NodeJS.Platform) {
  const env = { LATCHKEY_HOME: home };
  return createTestContext({
    env,
    paths: resolvePaths(env),
    cwd,
    ...(os === undefined ? {} : { platform: { nodeVersion: "24.0.0", uid: null, machineIdPaths: [], os } }),
  });
}

async function failure(promise: Promise<unknown>): Promise<LatchkeyError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof LatchkeyError) return error;
    throw error;
  }
  throw new Error("expected a LatchkeyError");
}

describe("loadRegistryConfigs", () => {
  it("declares nothing without config.toml or latchkey.json", async () => {
    expect(await loadRegistryConfigs(context())).toEqual([]);
  });

  it("reads config.toml registries with tokenEnv, provider and kind", async () => {
    await writeFile(
      join(home, "config.toml"),
      [
        "# other sections belong to other features",
        "[profiles.default]",
        'server = "https://latchkey.example"',
        "",
        '[registries."https://NPM.example.com/npm"]',
        'tokenEnv = "EXAMPLE_NPM_TOKEN"',
        "",
        '[registries."https://git.example.com/api/v4/packages/npm/"]',
        'kind = "gitlab"',
        'provider = ["/usr/local/bin/issuer", "--audience", "npm"]',
      ].join("\n"),
    );
    const configs = await loadRegistryConfigs(context());
    expect(configs).toEqual([
      {
        nerfDart: "//npm.example.com/npm/",
        url: "https://NPM.example.com/npm",
        kind: "custom",
        declaredIn: "user",
        file: join(home, "config.toml"),
        tokenEnv: "EXAMPLE_NPM_TOKEN",
      },
      {
        nerfDart: "//git.example.com/api/v4/packages/npm/",
        url: "https://git.example.com/api/v4/packages/npm/",
        kind: "gitlab",
        declaredIn: "user",
        file: join(home, "config.toml"),
        provider: {
          argv: ["/usr/local/bin/issuer", "--audience", "npm"],
          declaredIn: "user",
          file: join(home, "config.toml"),
        },
      },
    ]);
  });

  it("reads the project's latchkey.json registries from a subdirectory, the user's declaration winning", async () => {
    await writeFile(
      join(project, "latchkey.json"),
      JSON.stringify(
        {
          vault: "5b0d6a4e-8d6c-4f55-9d44-0a4c3f2f8e11",
          registries: {
            "https://npm.example.com/": { tokenEnv: "PROJECT_NPM_TOKEN" },
            "https://other.example.com/": { provider: ["./scripts/token.sh"] },
          },
        },
        null,
        2,
      ),
    );
    await writeFile(join(home, "config.toml"), '[registries."https://npm.example.com"]\ntokenEnv = "MINE"\n');
    const configs = await loadRegistryConfigs(context(join(project, "sub")));
    expect(configs).toEqual([
      {
        nerfDart: "//npm.example.com/",
        url: "https://npm.example.com",
        kind: "custom",
        declaredIn: "user",
        file: join(home, "config.toml"),
        tokenEnv: "MINE",
      },
      {
        nerfDart: "//other.example.com/",
        url: "https://other.example.com/",
        kind: "custom",
        declaredIn: "project",
        file: join(project, "latchkey.json"),
        provider: {
          argv: ["./scripts/token.sh"],
          declaredIn: "project",
          file: join(project, "latchkey.json"),
          // The line of "provider" in the file, for approval prompts and refusals.
          line: 8,
        },
      },
    ]);
  });

  it.each([
    ['registries = "x"', "registries", "expected a table of registries, found a string"],
    ['[registries."ftp://host/"]\ntokenEnv = "X"', 'registries."ftp://host/"', "only http and https"],
    [
      '[registries."https://h/"]\ntokenEnv = "1BAD"',
      'registries."https://h/".tokenEnv',
      "environment variable name",
    ],
    ['[registries."https://h/"]\nprovider = "cmd --flag"', 'registries."https://h/".provider', "array"],
    ['[registries."https://h/"]\nprovider = []', 'registries."https://h/".provider', "non-empty array"],
    ['[registries."https://h/"]\nprovider = ["cmd", 3]', 'registries."https://h/".provider', "strings"],
    ['[registries."https://h/"]\nkind = "artifactory"', 'registries."https://h/".kind', "one of npm, github"],
    [
      '[registries."https://h/"]\ntoken = "npm_secret"',
      'registries."https://h/".token',
      'unknown field "token"',
    ],
    [
      '[registries."https://h/"]\n[registries."https://H:443/"]',
      'registries."https://H:443/"',
      "same registry",
    ],
    ['registries."https://h/" = 3', 'registries."https://h/"', "expected a table, found a number"],
  ])("refuses config.toml %j naming the file and key", async (toml, key, why) => {
    await writeFile(join(home, "config.toml"), toml);
    const error = await failure(loadRegistryConfigs(context()));
    expect(error.code).toBe("LK_CONFIG_INVALID");
    expect(error.message).toContain(join(home, "config.toml"));
    expect(error.message).toContain(` at ${key}:`);
    expect(error.message).toContain(why);
    expect(error.message).not.toContain("npm_secret");
  });

  it("reports a TOML syntax error by line and column without quoting the file", async () => {
    await writeFile(
      join(home, "config.toml"),
      '[registries."https://h/"]\ntokenEnv = "X"\noops = npm_secret_value\n',
    );
    const error = await failure(loadRegistryConfigs(context()));
    expect(error.code).toBe("LK_CONFIG_INVALID");
    expect(error.message).toContain(`${join(home, "config.toml")}:3:`);
    expect(error.message).not.toContain("npm_secret_value");
  });

  it("does not let a project choose where the user's well-known tokens go", async () => {
    for (const [entry, key, why] of [
      [{ tokenEnv: "GITHUB_TOKEN" }, ".tokenEnv", "may not send GITHUB_TOKEN"],
      [{ tokenEnv: "NPM_TOKEN" }, ".tokenEnv", "may not send NPM_TOKEN"],
      [{ tokenEnv: "LATCHKEY_PASSPHRASE" }, ".tokenEnv", "may not send LATCHKEY_PASSPHRASE"],
      [{ kind: "gitlab" }, ".kind", "only accepted in your own config.toml"],
    ] as const) {
      await writeFile(
        join(project, "latchkey.json"),
        JSON.stringify({ registries: { "https://evil.example/api/v4/packages/npm/": entry } }),
      );
      const error = await failure(loadRegistryConfigs(context()));
      expect(error.code).toBe("LK_CONFIG_INVALID");
      expect(error.message).toContain(join(project, "latchkey.json"));
      expect(error.message).toContain(`registries."https://evil.example/api/v4/packages/npm/"${key}`);
      expect(error.message).toContain(why);
    }
  });

  it("compares a project's tokenEnv with the reserved names the way the platform does", async () => {
    const declare = (tokenEnv: string) =>
      writeFile(
        join(project, "latchkey.json"),
        `{\n  "registries": {\n    "https://evil.example/": {\n      "tokenEnv": "${tokenEnv}"\n    }\n  }\n}\n`,
      );
    for (const name of ["npm_token", "Gh_Token", "latchkey_passphrase", "LatchKey_Home"]) {
      await declare(name);
      // Windows has one variable per name in any case: npm_token is NPM_TOKEN there.
      const error = await failure(loadRegistryConfigs(context(project, "win32")));
      expect(error.code).toBe("LK_CONFIG_INVALID");
      expect(error.message).toContain(`may not send ${name}`);
      // The file and the line of the declaration.
      expect(error.message).toContain(`${join(project, "latchkey.json")}:4 at`);
      // On Linux they are other variables than the reserved ones (and need approval like any tokenEnv).
      expect((await loadRegistryConfigs(context(project, "linux")))[0]).toMatchObject({
        tokenEnv: name,
        tokenEnvLine: 4,
      });
    }
  });

  it("does not let a project name a plain-http registry beyond loopback", async () => {
    await writeFile(
      join(project, "latchkey.json"),
      JSON.stringify({ registries: { "http://registry.npmjs.org/": {} } }),
    );
    const error = await failure(loadRegistryConfigs(context()));
    expect(error.code).toBe("LK_CONFIG_INVALID");
    expect(error.message).toContain('registries."http://registry.npmjs.org/"');
    expect(error.message).toContain("plain-http");
    for (const url of ["http://127.0.0.1:4873/", "http://localhost:4873/", "http://[::1]:4873/"]) {
      await writeFile(join(project, "latchkey.json"), JSON.stringify({ registries: { [url]: {} } }));
      expect(await loadRegistryConfigs(context())).toHaveLength(1);
    }
    // The user's own config.toml may.
    await writeFile(join(project, "latchkey.json"), "{}");
    await writeFile(join(home, "config.toml"), '[registries."http://npm.internal/"]\n');
    expect(await loadRegistryConfigs(context())).toHaveLength(1);
  });

  it("passes on a malformed latchkey.json as the project's own error", async () => {
    await writeFile(join(project, "latchkey.json"), "{ nope");
    const error = await failure(loadRegistryConfigs(context()));
    expect(isLatchkeyError(error, "LK_PROJECT_INVALID")).toBe(true);
  });
});

describe("login records", () => {
  it("keeps the URL of each login, 0600, and forgets it", async () => {
    const ctx = context();
    await updateLoginRecord(ctx, "//127.0.0.1:4873/", "http://127.0.0.1:4873/");
    await updateLoginRecord(ctx, "//npm.example.com/", "https://npm.example.com/");
    expect(await readLoginRecords(ctx)).toEqual({
      "//127.0.0.1:4873/": { url: "http://127.0.0.1:4873/" },
      "//npm.example.com/": { url: "https://npm.example.com/" },
    });
    expect((await stat(ctx.paths.registries)).mode & 0o777).toBe(0o600);
    await updateLoginRecord(ctx, "//127.0.0.1:4873/", null);
    expect(await readLoginRecords(ctx)).toEqual({
      "//npm.example.com/": { url: "https://npm.example.com/" },
    });
    expect(await readFile(ctx.paths.registries, "utf8")).not.toContain("4873");
  });

  it("ignores an entry whose URL does not match its key", async () => {
    const ctx = context();
    await writeFile(
      ctx.paths.registries,
      JSON.stringify({
        "//npm.example.com/": { url: "https://evil.example/" },
        "//ok.example/": { url: "http://ok.example" },
      }),
    );
    expect(await readLoginRecords(ctx)).toEqual({ "//ok.example/": { url: "http://ok.example" } });
  });
});

import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "smol-toml";
import { createTestContext } from "../../test/support/context.js";
import { resolvePaths } from "../paths.js";
import { recordProfileServer, withProfileServer } from "./profile-config.js";

const URL_A = "https://latchkey.example.com";

describe("withProfileServer", () => {
  it("creates the table in an empty file", () => {
    expect(withProfileServer("", "default", URL_A)).toBe(`[profiles.default]\nserver = "${URL_A}"\n`);
  });

  it("appends the table after other content, keeping comments", () => {
    const text = `# my settings\n[registries."//npm.example.com/"]\nkind = "npm"\n`;
    const next = withProfileServer(text, "work", URL_A);
    expect(next.startsWith(text)).toBe(true);
    expect(parse(next)).toMatchObject({ profiles: { work: { server: URL_A } } });
  });

  it("replaces an existing server line in the profile only, keeping the rest of the table", () => {
    const text =
      `[profiles.default]\nserver = "https://old.example.com" # old\nsso_issuer = "https://idp.example.com"\n\n` +
      `[profiles.work]\nserver = "https://work.example.com"\n`;
    const next = withProfileServer(text, "default", URL_A);
    const doc = parse(next) as { profiles: Record<string, Record<string, string>> };
    expect(doc.profiles.default).toEqual({ server: URL_A, sso_issuer: "https://idp.example.com" });
    expect(doc.profiles.work!.server).toBe("https://work.example.com");
  });

  it("adds the line under an existing header, also a quoted one", () => {
    const text = `[profiles."team.a"]\nsso_issuer = "https://idp.example.com"\n`;
    const next = withProfileServer(text, "team.a", URL_A);
    expect(parse(next)).toMatchObject({
      profiles: { "team.a": { server: URL_A, sso_issuer: "https://idp.example.com" } },
    });
  });

  it("does not touch a server key of a nested environment table", () => {
    const text = `[profiles.default]\n\n[profiles.default.environments.api]\nissuer = "https://idp.example.com"\nclient_id = "x"\nclient_secret_env = "S"\n`;
    const next = withProfileServer(text, "default", URL_A);
    expect(parse(next)).toMatchObject({
      profiles: { default: { server: URL_A, environments: { api: { client_id: "x" } } } },
    });
  });
});

describe("recordProfileServer", () => {
  let home: string;
  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), "lk-profile-config-"));
  });
  afterAll(async () => {
    await rm(home, { recursive: true, force: true });
  });

  function context(dir: string) {
    const env = { LATCHKEY_HOME: dir };
    return createTestContext({ env, paths: resolvePaths(env) });
  }

  it("writes config.toml 0600 and keeps the user's other lines", async () => {
    const dir = join(home, "a");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "config.toml"), `# keep me\n[profiles.default]\ndefault_environment = "api"\n`);
    await recordProfileServer(context(dir), "default", URL_A);
    const text = await readFile(join(dir, "config.toml"), "utf8");
    expect(text).toBe(`# keep me\n[profiles.default]\nserver = "${URL_A}"\ndefault_environment = "api"\n`);
    expect((await stat(join(dir, "config.toml"))).mode & 0o777).toBe(0o600);
  });

  it("refuses, leaving the file as it was, a layout the line edit cannot handle", async () => {
    const dir = join(home, "b");
    await mkdir(dir, { recursive: true });
    const text = `profiles = { default = { sso_issuer = "https://idp.example.com" } }\n`;
    await writeFile(join(dir, "config.toml"), text);
    await expect(recordProfileServer(context(dir), "default", URL_A)).rejects.toMatchObject({
      code: "LK_CONFIG_INVALID",
    });
    expect(await readFile(join(dir, "config.toml"), "utf8")).toBe(text);
  });
});

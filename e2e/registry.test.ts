// login, whoami, token and logout through the built CLI, on the encrypted file store, against a loopback registry
// that serves npm's authentication endpoints (test/support/npm-registry.ts). Every flow ends with a search of every
// file under the test's HOME, LATCHKEY_HOME, project and TMPDIR for the secrets it handled.
import { randomUUID } from "node:crypto";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  startNpmRegistry,
  type NpmRegistry,
  type NpmRegistryOptions,
} from "../packages/cli/test/support/npm-registry.js";
import { expectFailure, expectSuccess, type TempProject } from "./support/project.js";
import { expectNoSecretOnDisk, fakeBrowser, registryProject } from "./support/registry-flows.js";

const projects: TempProject[] = [];
const registries: NpmRegistry[] = [];
afterEach(async () => {
  await Promise.all(registries.splice(0).map((r) => r.close()));
  await Promise.all(projects.splice(0).map((p) => p.cleanup()));
});

async function project(): Promise<TempProject> {
  const p = await registryProject();
  projects.push(p);
  return p;
}

async function registry(options: NpmRegistryOptions = {}): Promise<NpmRegistry> {
  const r = await startNpmRegistry(options);
  registries.push(r);
  return r;
}

const canary = (label: string): string => `npm_${label}_${randomUUID().replaceAll("-", "")}`;

describe("registry credentials on the file store", () => {
  it("logs in with a token on stdin, validates it on every whoami, prints it for scripts, and logs out", async () => {
    const token = canary("stdin");
    const r = await registry({ tokens: { [token]: "alice" } });
    const p = await project();
    const nerf = r.url.replace("http:", "");

    const login = await p.cli(["login", "--registry", r.url, "--token-stdin"], { input: `${token}\n` });
    expectSuccess(login);
    expect(login.stdout).toBe("");
    expect(login.stderr).toContain(
      `Logged in to ${r.url} as alice. The token is in the encrypted file store (account registry:${nerf}).`,
    );
    expect((await stat(join(p.latchkeyHome, "store.enc"))).mode & 0o777).toBe(0o600);

    const who = await p.cli(["whoami", "--registry", r.url, "--json"]);
    expectSuccess(who);
    expect(JSON.parse(who.stdout)).toEqual({
      registry: r.url,
      nerfDart: nerf,
      kind: "custom",
      user: "alice",
      verified: true,
      source: "keystore",
      sourceName: `keystore registry:${nerf}`,
      storage: "file",
    });
    // Without --registry, whoami finds the stored registry and its URL (plain http) from the login.
    const all = await p.cli(["whoami"]);
    expectSuccess(all);
    expect(all.stdout).toBe(
      `${r.url}\n  user:    alice\n  source:  stored token (encrypted file store)\n  storage: encrypted file store\n`,
    );
    const whoamiCalls = r.requests.filter((q) => q.path === "/-/whoami").length;
    expect(whoamiCalls).toBe(3);

    const printed = await p.cli(["token", "--registry", r.url]);
    expectSuccess(printed);
    expect(printed.stdout).toBe(token);
    expect(printed.stderr).toBe("");

    // The registry revokes the token: the next whoami says so, with the login hint.
    r.tokens.delete(token);
    const revoked = await p.cli(["whoami", "--registry", r.url]);
    expectFailure(revoked, "LK_TOKEN_INVALID");
    expect(revoked.stderr).toContain(`latchkey login --registry ${r.url}`);

    expectSuccess(await p.cli(["logout", "--registry", r.url]));
    expectFailure(await p.cli(["token", "--registry", r.url]), "LK_TOKEN_MISSING");
    expect((await p.cli(["keystore", "list"])).stderr).toContain("The keystore is empty.");
    const files = await expectNoSecretOnDisk(p.root, [token]);
    expect(files).toContain(join(p.latchkeyHome, "registries.json"));
    expect(JSON.parse(await readFile(join(p.latchkeyHome, "registries.json"), "utf8"))).toEqual({});
    for (const result of [login, who, all, revoked])
      expect(result.stderr + result.stdout).not.toContain(token);
  });

  it("logs in from a token file, and refuses a rejected token without storing it", async () => {
    const good = canary("file");
    const bad = canary("bad");
    const r = await registry({ tokens: { [good]: "bob" } });
    const p = await project();
    // The user's token file lives outside the searched tree: it is theirs, not something Latchkey wrote.
    const outside = await registryProject();
    projects.push(outside);
    const tokenFile = join(outside.root, "token.txt");
    await writeFile(tokenFile, `${bad}\n`);
    const rejected = await p.cli(["login", "--registry", r.url, "--token-file", tokenFile]);
    expectFailure(rejected, "LK_TOKEN_INVALID");
    expect(rejected.stderr).not.toContain(bad);
    expect((await p.cli(["keystore", "list", "--json"])).stdout).toContain('"accounts": []');

    await writeFile(tokenFile, good);
    expectSuccess(await p.cli(["login", "--registry", r.url, "--token-file", tokenFile]));
    expect((await p.cli(["whoami", "--registry", r.url])).stdout).toContain("user:    bob");
    await expectNoSecretOnDisk(p.root, [good, bad]);
  });

  it("refuses --token VALUE and --token=VALUE, naming the safe ways and never echoing the value", async () => {
    const token = canary("argv");
    const p = await project();
    for (const args of [
      ["login", "--token", token],
      ["login", `--token=${token}`],
    ]) {
      const result = await p.cli(args);
      expectFailure(result, "LK_TOKEN_IN_ARGV");
      expect(result.code).toBe(2);
      expect(result.stderr).toContain("--token-stdin");
      expect(result.stderr).toContain("--token-file");
      expect(result.stderr).not.toContain(token);
    }
    await expectNoSecretOnDisk(p.root, [token]);
  });

  it("logs in with the classic user login, the password read from stdin", async () => {
    const password = canary("password");
    const r = await registry({ webLogin: false, users: { carol: { password } } });
    const p = await project();
    const login = await p.cli(["login", "--registry", r.url, "--user", "carol"], { input: `${password}\n` });
    expectSuccess(login);
    expect(login.stderr).toContain("as carol.");
    expect(r.issued).toHaveLength(1);
    const issued = r.issued[0]!;
    expect((await p.cli(["token", "--registry", r.url])).stdout).toBe(issued);
    const wrong = await p.cli(["login", "--registry", r.url, "--user", "carol"], {
      input: "not-the-password\n",
    });
    expectFailure(wrong, "LK_LOGIN_FAILED");
    expect(wrong.stderr).not.toContain("not-the-password");
    await expectNoSecretOnDisk(p.root, [password, issued]);
  });

  it("logs in through npm's web login: the browser gets loginUrl, the token comes from doneUrl", async () => {
    const r = await registry({ retryAfter: "1" });
    const p = await project();
    const browser = await fakeBrowser(p.root);
    const login = await p.cli(["login", "--registry", r.url, "--web"], { env: { BROWSER: browser.program } });
    expectSuccess(login);
    expect(r.issued).toHaveLength(1);
    const token = r.issued[0]!;
    expect(login.stderr).toContain("as web-user.");
    const argv = (await readFile(browser.argvLog, "utf8")).trim().split("\n");
    expect(argv).toHaveLength(2);
    expect(argv[1]!.startsWith(`${r.url}-/v1/login/browser/`)).toBe(true);
    expect(login.stderr).toContain(argv[1]);
    expect((await p.cli(["token", "--registry", r.url])).stdout).toBe(token);
    // The browser's argv log is under the searched root too: the token never reached a child's argv.
    await expectNoSecretOnDisk(p.root, [token]);
  });

  it("traces registry requests at -v and -vv, never showing a token, a password or the web login's doneUrl", async () => {
    const token = canary("traced");
    const password = canary("password");
    const r = await registry({ tokens: { [token]: "alice" }, users: { carol: { password } } });
    const p = await project();
    const whoamiUrl = `${r.url}-/whoami`;

    const login = await p.cli(["login", "--registry", r.url, "--token-stdin", "-vv"], {
      input: `${token}\n`,
    });
    expectSuccess(login);
    expect(login.stderr).toContain(
      `> GET ${whoamiUrl}\n> accept: application/json\n> authorization: Bearer [REDACTED]`,
    );
    expect(login.stderr).toContain(`< 200 OK (GET ${whoamiUrl})`);
    expect(login.stderr).toContain('< {"username":"alice"}');
    expect(login.stderr).not.toContain(token);

    const who = await p.cli(["whoami", "--registry", r.url, "-v"]);
    expectSuccess(who);
    expect(who.stderr).toContain(`> GET ${whoamiUrl}\n`);
    expect(who.stderr).toContain(`< 200 OK (GET ${whoamiUrl})`);
    expect(who.stderr).not.toContain("authorization");
    expect(who.stderr).not.toContain(token);

    const classic = await p.cli(["login", "--registry", r.url, "--user", "carol", "-vv"], {
      input: `${password}\n`,
    });
    expectSuccess(classic);
    expect(classic.stderr).toContain(`> PUT ${r.url}-/user/org.couchdb.user:carol`);
    expect(classic.stderr).toContain('"password":"[REDACTED]"');
    expect(classic.stderr).toContain('"token":"[REDACTED]"');
    const browser = await fakeBrowser(p.root);
    const web = await p.cli(["login", "--registry", r.url, "--web", "-vv"], {
      env: { BROWSER: browser.program },
    });
    expectSuccess(web);
    const origin = new URL(r.url).origin;
    expect(web.stderr).toContain(`> POST ${r.url}-/v1/login`);
    // Whoever holds doneUrl can collect the token: the trace shows only its origin, and its answer redacted.
    expect(web.stderr).toContain(`> GET ${origin}/[REDACTED]`);
    expect(web.stderr).toContain('"doneUrl":"[REDACTED]"');
    expect(web.stderr).not.toContain("-/v1/done?");
    expect(r.issued).toHaveLength(2);
    for (const out of [classic.stderr, web.stderr])
      for (const secret of [password, token, ...r.issued]) expect(out).not.toContain(secret);
  });

  it("explains each source, and never sends NPM_TOKEN or GH_TOKEN to another registry", async () => {
    const stored = canary("stored");
    const npmToken = canary("npmenv");
    const ghToken = canary("ghenv");
    const r = await registry({ tokens: { [stored]: "dave", [npmToken]: "should-not-be-sent" } });
    const p = await project();
    expectSuccess(await p.cli(["login", "--registry", r.url, "--token-stdin"], { input: stored }));
    const env = { NPM_TOKEN: npmToken, GH_TOKEN: ghToken };
    const explained = await p.cli(["whoami", "--registry", r.url, "--explain"], { env });
    expectSuccess(explained);
    const nerf = r.url.replace("http:", "");
    expect(explained.stdout).toBe(
      [
        r.url,
        "  user:    dave",
        "  source:  stored token (encrypted file store)",
        "  storage: encrypted file store",
        "  sources, in precedence order:",
        "    - env NPM_TOKEN: set, but only sent to registry.npmjs.org",
        "    - env GH_TOKEN: set, but only sent to npm.pkg.github.com",
        "    - credential provider: none configured",
        "    - host CLI: no host CLI serves this registry",
        `    ✓ keystore registry:${nerf}: stored in the file store`,
        "",
      ].join("\n"),
    );
    const json = await p.cli(["whoami", "--registry", r.url, "--explain", "--json"], { env });
    expect(JSON.parse(json.stdout)).toMatchObject({
      user: "dave",
      source: "keystore",
      checks: expect.any(Array),
    });
    expect((await p.cli(["token", "--registry", r.url], { env })).stdout).toBe(stored);
    expect(r.requests.map((q) => q.authorization)).not.toContainEqual(`Bearer ${npmToken}`);
    expect(r.requests.map((q) => q.authorization)).not.toContainEqual(`Bearer ${ghToken}`);
    expect(r.requests.every((q) => q.authorization === `Bearer ${stored}`)).toBe(true);
    // For npmjs itself, NPM_TOKEN is the token (no request is made to print it).
    expect((await p.cli(["token", "--npm"], { env })).stdout).toBe(npmToken);
    await expectNoSecretOnDisk(p.root, [stored, npmToken, ghToken]);
  });

  it("uses a config.toml tokenEnv for a registry under a path, and logs out of everything with --all", async () => {
    const envToken = canary("configured");
    const storedA = canary("a");
    const storedB = canary("b");
    const withPath = await registry({ prefix: "/api/npm/team/", tokens: { [envToken]: "erin" } });
    const a = await registry({ tokens: { [storedA]: "a" } });
    const b = await registry({ tokens: { [storedB]: "b" } });
    const p = await project();
    await mkdir(p.latchkeyHome, { recursive: true, mode: 0o700 });
    await writeFile(
      join(p.latchkeyHome, "config.toml"),
      `[registries."${withPath.url}"]\ntokenEnv = "TEAM_NPM_TOKEN"\n`,
    );
    const env = { TEAM_NPM_TOKEN: envToken };
    const who = await p.cli(["whoami", "--registry", withPath.url, "--json"], { env });
    expectSuccess(who);
    expect(JSON.parse(who.stdout)).toMatchObject({
      user: "erin",
      source: "env",
      sourceName: "TEAM_NPM_TOKEN",
    });
    expect(withPath.requests.map((q) => q.path)).toEqual(["/api/npm/team/-/whoami"]);

    expectSuccess(await p.cli(["login", "--registry", a.url, "--token-stdin"], { input: storedA }));
    expectSuccess(await p.cli(["login", "--registry", b.url, "--token-stdin"], { input: storedB }));
    const everything = await p.cli(["whoami", "--json"], { env });
    expectSuccess(everything);
    const users = (JSON.parse(everything.stdout) as { registries: { registry: string; user: string }[] })
      .registries;
    expect(Object.fromEntries(users.map((e) => [e.registry, e.user]))).toEqual({
      [withPath.url]: "erin",
      [a.url]: "a",
      [b.url]: "b",
    });
    const out = await p.cli(["logout", "--all"]);
    expectSuccess(out);
    expect(out.stderr).toContain("Logged out of 2 registries");
    expectFailure(await p.cli(["token", "--registry", a.url]), "LK_TOKEN_MISSING");
    expect((await p.cli(["token", "--registry", withPath.url], { env })).stdout).toBe(envToken);
    await expectNoSecretOnDisk(p.root, [envToken, storedA, storedB]);
  });
});

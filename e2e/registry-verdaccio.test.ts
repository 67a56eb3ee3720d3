// The real-registry proof for login and whoami: verdaccio (e2e/support/verdaccio.ts) on loopback, authentication
// required. `latchkey login --user` performs npm's classic login against verdaccio's htpasswd users (a new user is
// registered, an existing one gets the 409 → authenticated PUT that npm does), `--token-stdin` stores a token
// verdaccio issued, `--web` falls back to the classic login since verdaccio offers no web login, and whoami is
// answered by verdaccio's own /-/whoami.
import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { expectFailure, expectSuccess, type TempProject } from "./support/project.js";
import { expectNoSecretOnDisk, registryProject } from "./support/registry-flows.js";
import { startVerdaccio, type Verdaccio } from "./support/verdaccio.js";

describe("registry login against verdaccio", () => {
  let verdaccio: Verdaccio;
  const projects: TempProject[] = [];

  beforeAll(async () => {
    verdaccio = await startVerdaccio();
  });
  afterAll(() => verdaccio.stop());
  afterEach(async () => {
    await Promise.all(projects.splice(0).map((p) => p.cleanup()));
  });

  async function project(): Promise<TempProject> {
    const p = await registryProject();
    projects.push(p);
    return p;
  }

  const password = (): string => `pw-${randomUUID()}`;

  it("logs in an htpasswd user with the classic login, and whoami names them", async () => {
    const pw = password();
    await verdaccio.addUser("alice", pw);
    const p = await project();
    const login = await p.cli(["login", "--registry", verdaccio.url, "--user", "alice"], {
      input: `${pw}\n`,
    });
    expectSuccess(login);
    expect(login.stderr).toContain(`Logged in to ${verdaccio.url} as alice.`);
    const who = await p.cli(["whoami", "--registry", verdaccio.url, "--json"]);
    expectSuccess(who);
    expect(JSON.parse(who.stdout)).toMatchObject({
      user: "alice",
      verified: true,
      source: "keystore",
      storage: "file",
    });
    const token = (await p.cli(["token", "--registry", verdaccio.url])).stdout.trimEnd();
    expect(token.length).toBeGreaterThan(8);
    // The stored token is what it claims to be: verdaccio lets it past the authentication every package needs.
    const packageUrl = new URL("@team%2fprivate", verdaccio.url);
    expect((await fetch(packageUrl)).status).toBe(401);
    expect((await fetch(packageUrl, { headers: { authorization: `Bearer ${token}` } })).status).toBe(404);
    const wrong = await p.cli(["login", "--registry", verdaccio.url, "--user", "alice"], {
      input: "wrong-password\n",
    });
    expectFailure(wrong, "LK_LOGIN_FAILED");
    expect(wrong.stderr).toContain("rejected the user name or password");
    expect((await p.cli(["token", "--registry", verdaccio.url])).stdout.trimEnd()).toBe(token);
    await expectNoSecretOnDisk(p.root, [pw, token]);
  });

  it("stores a token verdaccio issued, given on stdin, and rejects one it did not", async () => {
    const pw = password();
    const token = await verdaccio.addUser("bob", pw);
    const p = await project();
    expectSuccess(await p.cli(["login", "--registry", verdaccio.url, "--token-stdin"], { input: token }));
    const who = await p.cli(["whoami", "--registry", verdaccio.url]);
    expectSuccess(who);
    expect(who.stdout).toContain("user:    bob");
    const forged = `${token.slice(0, -4)}AAAA`;
    const refused = await p.cli(["login", "--registry", verdaccio.url, "--token-stdin"], { input: forged });
    expectFailure(refused, "LK_TOKEN_INVALID");
    expect((await p.cli(["token", "--registry", verdaccio.url])).stdout).toBe(token);
    await expectNoSecretOnDisk(p.root, [pw, token, forged]);
  });

  it("falls back from --web to the classic login, since verdaccio has no web login", async () => {
    const pw = password();
    const p = await project();
    const login = await p.cli(["login", "--registry", verdaccio.url, "--web", "--user", "carol"], {
      input: pw,
    });
    expectSuccess(login);
    expect(login.stderr).toContain("offers no web login; logging in as carol with a password instead");
    expect((await p.cli(["whoami", "--registry", verdaccio.url])).stdout).toContain("user:    carol");
    const token = (await p.cli(["token", "--registry", verdaccio.url])).stdout.trimEnd();
    await expectNoSecretOnDisk(p.root, [pw, token]);
  });
});

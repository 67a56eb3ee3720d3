// Registry login on a real Secret Service (gnome-keyring in a private D-Bus session), through the built CLI: the
// token lands in the keychain under service `latchkey`, account `registry:<nerf dart>` (checked with secret-tool),
// and in no file.
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startNpmRegistry, type NpmRegistry } from "../packages/cli/test/support/npm-registry.js";
import {
  secretServiceAvailable,
  startSecretService,
  type SecretServiceSession,
} from "../packages/cli/test/support/secret-service.js";
import { requirePart } from "./support/prerequisites.js";
import { expectFailure, expectSuccess, type TempProject } from "./support/project.js";
import { expectNoSecretOnDisk, registryProject } from "./support/registry-flows.js";

const keychainReady = requirePart("the keychain registry e2e suite", secretServiceAvailable());

describe.skipIf(!keychainReady)("registry tokens on a real Secret Service", () => {
  let session: SecretServiceSession;
  const projects: TempProject[] = [];
  const registries: NpmRegistry[] = [];

  beforeAll(async () => {
    session = await startSecretService({ variant: "unlocked" });
  });
  afterAll(() => session.stop());
  afterEach(async () => {
    await Promise.all(registries.splice(0).map((r) => r.close()));
    await Promise.all(projects.splice(0).map((p) => p.cleanup()));
  });

  it("stores the token under registry:<nerf dart>, reports the keychain, and removes it on logout", async () => {
    const token = `npm_keyring_${randomUUID().replaceAll("-", "")}`;
    const r = await startNpmRegistry({ tokens: { [token]: "kim" } });
    registries.push(r);
    const p = await registryProject({ keystoreEnv: session.env });
    projects.push(p);
    const nerf = r.url.replace("http:", "");

    const login = await p.cli(["login", "--registry", r.url, "--token-stdin"], { input: token });
    expectSuccess(login);
    expect(login.stderr).toContain(`The token is in the OS keychain (account registry:${nerf}).`);
    expect(await session.secretToolLookup({ service: "latchkey", username: `registry:${nerf}` })).toBe(token);

    const who = await p.cli(["whoami", "--registry", r.url, "--json"]);
    expectSuccess(who);
    expect(JSON.parse(who.stdout)).toMatchObject({ user: "kim", source: "keystore", storage: "keyring" });
    expect((await p.cli(["token", "--registry", r.url])).stdout).toBe(token);

    expect(existsSync(join(p.latchkeyHome, "store.enc"))).toBe(false);
    await expectNoSecretOnDisk(p.root, [token]);

    expectSuccess(await p.cli(["logout", "--registry", r.url]));
    expect(await session.secretToolLookup({ service: "latchkey", username: `registry:${nerf}` })).toBeNull();
    expectFailure(await p.cli(["token", "--registry", r.url]), "LK_TOKEN_MISSING");
  });
});

// Environment tokens on a real Secret Service (gnome-keyring in a private D-Bus session), through the built CLI:
// the cache lands in the keychain under service `latchkey`, account `oauth:<profile>:<env>` (checked with
// secret-tool), concurrent processes still make one token request, and no file holds a token or the client secret.
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  secretServiceAvailable,
  startSecretService,
  type SecretServiceSession,
} from "../packages/cli/test/support/secret-service.js";
import { requirePart } from "./support/prerequisites.js";
import { collect } from "./support/cli.js";
import { startOidcProvider, type OidcProvider } from "./support/oidc-provider.js";
import { expectSuccess, tempProject } from "./support/project.js";
import { expectNoSecretOnDisk } from "./support/registry-flows.js";

const keychainReady = requirePart("the keychain OAuth e2e suite", secretServiceAvailable());

describe.skipIf(!keychainReady)("environment tokens on a real Secret Service", () => {
  let session: SecretServiceSession;
  let provider: OidcProvider;

  beforeAll(async () => {
    session = await startSecretService({ variant: "unlocked" });
    provider = await startOidcProvider();
  });
  afterAll(async () => {
    await provider?.stop();
    await session?.stop();
  });

  it("caches under oauth:<profile>:<env> in the keychain, single-flight across 32 processes, nothing on disk", async () => {
    const p = await tempProject({ keystoreEnv: session.env });
    try {
      await mkdir(p.latchkeyHome, { recursive: true });
      await writeFile(
        join(p.latchkeyHome, "config.toml"),
        `[environments.svc]\nissuer = "${provider.issuer}"\nclient_id = "${provider.clients.confidential.id}"\nclient_secret_env = "SVC_SECRET"\n`,
      );
      const env = { SVC_SECRET: provider.clients.confidential.secret };
      provider.setAccessTokenTtl(30);
      const first = await p.cli(["auth", "token", "--env", "svc"], { env });
      expectSuccess(first);
      const stored = await session.secretToolLookup({ service: "latchkey", username: "oauth:default:svc" });
      expect(JSON.parse(stored ?? "{}")).toMatchObject({
        access_token: first.stdout.trim(),
        token_type: "Bearer",
      });

      provider.setAccessTokenTtl(3600);
      provider.resetTokenRequests();
      const hold = provider.holdTokenRequests();
      const running = Promise.all(
        Array.from({ length: 32 }, () => collect(p.start(["auth", "token", "--env", "svc"], { env }))),
      );
      await hold.arrived;
      // Lets the other processes reach the lock while the first request is held (strength, not correctness).
      await new Promise((resolve) => setTimeout(resolve, 1500));
      hold.release();
      const results = await running;
      for (const result of results) expectSuccess(result);
      expect(new Set(results.map((r) => r.stdout)).size).toBe(1);
      expect(provider.tokenRequests()).toEqual({ client_credentials: 1 });

      expect(existsSync(join(p.latchkeyHome, "store.enc"))).toBe(false);
      await expectNoSecretOnDisk(p.root, [
        provider.clients.confidential.secret,
        first.stdout.trim(),
        results[0]!.stdout.trim(),
      ]);
    } finally {
      await p.cleanup();
    }
  });
});

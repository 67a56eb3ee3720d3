// The SSO session on a real Secret Service (gnome-keyring in a private D-Bus session): the browser login's tokens
// land in the keychain under service `latchkey`, account `sso:<issuer>` (read back with secret-tool), in no file,
// and `logout sso` removes them after revoking them at the real provider.
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  secretServiceAvailable,
  startSecretService,
  type SecretServiceSession,
} from "../packages/cli/test/support/secret-service.js";
import { requirePart } from "./support/prerequisites.js";
import { isolatedEnv, runCli, tempDir } from "./support/cli.js";
import { writeBrowserLauncher } from "./support/oidc-browser.js";
import { startOidcProvider, type OidcProvider } from "./support/oidc-provider.js";

const keychainReady = requirePart("the keychain SSO e2e suite", secretServiceAvailable());

async function filesContaining(root: string, needles: readonly string[]): Promise<string[]> {
  const hits: string[] = [];
  const walk = async (path: string): Promise<void> => {
    const entries = await readdir(path, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const full = join(path, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) {
        const text = (await readFile(full)).toString("latin1");
        if (needles.some((n) => text.includes(n))) hits.push(full);
      }
    }
  };
  await walk(root);
  return hits;
}

describe.skipIf(!keychainReady)("SSO session on a real Secret Service", () => {
  let session: SecretServiceSession;
  let provider: OidcProvider;
  let dir: { path: string; cleanup: () => Promise<void> };

  beforeAll(async () => {
    session = await startSecretService({ variant: "unlocked" });
    provider = await startOidcProvider();
    dir = await tempDir("lk-sso-keyring-");
  });
  afterAll(async () => {
    await provider?.stop();
    await session?.stop();
    await dir?.cleanup();
  });

  it("keeps the session in the keychain only, and logout revokes and removes it", async () => {
    const latchkeyHome = join(dir.path, "latchkey");
    const tmp = join(dir.path, "tmp");
    await mkdir(tmp, { recursive: true });
    const env = isolatedEnv({
      ...session.env,
      LATCHKEY_HOME: latchkeyHome,
      TMPDIR: tmp,
      BROWSER: await writeBrowserLauncher(dir.path),
    });
    const account = `sso:${provider.issuer}`;
    const login = await runCli(
      ["login", "sso", "--issuer", provider.issuer, "--client-id", provider.clients.native.id],
      { env },
    );
    expect(login.stderr).toContain("session stored in the keyring keystore");
    expect(login.code).toBe(0);

    const raw = await session.secretToolLookup({ service: "latchkey", username: account });
    expect(raw).not.toBeNull();
    const stored = JSON.parse(raw!) as {
      access_token: string;
      refresh_token: string;
      id_token: string;
      subject: string;
    };
    expect(stored.subject).toBe("alice");
    expect(existsSync(join(latchkeyHome, "store.enc"))).toBe(false);
    const canaries = [stored.access_token, stored.refresh_token, stored.id_token];
    for (const root of [dir.path, session.env.HOME!]) {
      // The keyring's own files hold the secrets encrypted (gnome-keyring's login keyring), never in clear.
      expect(await filesContaining(root, canaries)).toEqual([]);
    }

    const status = await runCli(["auth", "status", "--json", "--issuer", provider.issuer], { env });
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({
      backend: "keyring",
      sessions: [{ issuer: provider.issuer, subject: "alice", state: "valid" }],
    });

    const logout = await runCli(["logout", "sso", "--issuer", provider.issuer], { env });
    expect(logout.code).toBe(0);
    expect(await session.secretToolLookup({ service: "latchkey", username: account })).toBeNull();
    expect(await provider.provider.RefreshToken.find(stored.refresh_token)).toBeUndefined();
  });
});

// The per-project vault on a real Secret Service (gnome-keyring in a private D-Bus session), through the built
// CLI: the machine wrapping key and the wrapped vault key live in the keychain (checked with secret-tool), only the
// encrypted blob lives on disk, and the everyday commands work the same as on the file store.
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  secretServiceAvailable,
  startSecretService,
  type SecretServiceSession,
} from "../packages/cli/test/support/secret-service.js";
import { requirePart } from "./support/prerequisites.js";
import { allFiles, expectSuccess, tempProject, type TempProject } from "./support/project.js";

const keychainReady = requirePart("the keychain vault e2e suite", secretServiceAvailable());

const NODE = process.execPath;
const PRINT_ENV =
  "process.stdout.write(JSON.stringify(Object.fromEntries(process.argv.slice(1).map((k) => [k, process.env[k]]))))";

describe.skipIf(!keychainReady)("vault on a real Secret Service", () => {
  let session: SecretServiceSession;
  const projects: TempProject[] = [];

  beforeAll(async () => {
    session = await startSecretService({ variant: "unlocked" });
  });
  afterAll(() => session.stop());
  afterEach(async () => {
    await Promise.all(projects.splice(0).map((p) => p.cleanup()));
  });

  async function project(): Promise<TempProject> {
    const p = await tempProject({ keystoreEnv: session.env });
    projects.push(p);
    return p;
  }

  it("keeps the wrapping key and the wrapped vault key in the keychain and only the blob on disk", async () => {
    const canary = `lk-keyring-canary-${randomUUID()}`;
    const p = await project();
    expectSuccess(await p.cli(["env", "set", `FROM_ARGV=${canary}-argv`, "PLAIN=plain"]));
    expectSuccess(await p.cli(["env", "set", "FROM_STDIN"], { input: `${canary}-stdin\n` }));
    const id = await p.vaultId();

    const [get, list, listShow, envs] = await Promise.all([
      p.cli(["env", "get", "FROM_STDIN"]),
      p.cli(["env", "list"]),
      p.cli(["env", "list", "--show"]),
      p.cli(["env", "envs", "--json"]),
    ]);
    expect(get.stdout).toBe(`${canary}-stdin`);
    expect(list.stdout).toBe("FROM_ARGV\nFROM_STDIN\nPLAIN\n");
    expect(listShow.stdout).toBe(`FROM_ARGV=${canary}-argv\nFROM_STDIN=${canary}-stdin\nPLAIN=plain\n`);
    expect(JSON.parse(envs.stdout)).toEqual({ environments: [{ name: "default", keys: 3 }] });

    const wrappingKey = await session.secretToolLookup({ service: "latchkey", username: "wrapping-key" });
    const vaultKey = await session.secretToolLookup({ service: "latchkey", username: `vault-key:${id}` });
    expect(wrappingKey).not.toBeNull();
    expect(vaultKey).not.toBeNull();
    expect(Buffer.from(wrappingKey ?? "", "base64")).toHaveLength(32);
    // The vault key is stored wrapped: an envelope, longer than the bare 256-bit key.
    expect(Buffer.from(vaultKey ?? "", "base64").length).toBeGreaterThan(32);

    expect(existsSync(join(p.latchkeyHome, "store.enc"))).toBe(false);
    expect(existsSync(join(p.latchkeyHome, "store.key"))).toBe(false);
    const files = await allFiles(p.root);
    // Besides the blob, only keystore.json (the record that this machine uses the keychain) and approvals.json
    // (the project directory this vault is bound to): no secrets in either.
    expect(files.filter((f) => f.startsWith(p.latchkeyHome))).toEqual([
      join(p.latchkeyHome, "approvals.json"),
      join(p.latchkeyHome, "keystore.json"),
      join(p.vaultsDir, `${id}.enc`),
    ]);
    for (const file of files) {
      const bytes = await readFile(file);
      expect(bytes.includes(Buffer.from(canary)), file).toBe(false);
      for (const secret of [wrappingKey, vaultKey])
        expect(bytes.includes(Buffer.from(secret ?? "")), file).toBe(false);
    }
  });

  it("runs a program with the secrets, masked on request", async () => {
    const p = await project();
    expectSuccess(await p.cli(["env", "set", "API_TOKEN=keyring-token-value", "MODE=keyring"]));
    const [plain, masked, code] = await Promise.all([
      p.cli(["run", "--", NODE, "-e", PRINT_ENV, "API_TOKEN", "MODE"], { env: { PARENT: "p" } }),
      p.cli(["run", "--mask", "--", "sh", "-c", 'echo "token=$API_TOKEN"']),
      p.cli(["env", "run", "--", "sh", "-c", 'test "$API_TOKEN" = keyring-token-value && exit 3']),
    ]);
    expectSuccess(plain);
    expect(JSON.parse(plain.stdout)).toEqual({ API_TOKEN: "keyring-token-value", MODE: "keyring" });
    expect(masked.stdout).toBe("token=*****\n");
    expect(code.code).toBe(3);
  });

  it("imports a dotenv file and round-trips it through export", async () => {
    const p = await project();
    const dotenv =
      '# keyring import\nexport DATABASE_URL="postgres://u:p@db/app"\nMULTI="one\ntwo"\nQUOTED=\'it "is" $literal\'\n';
    await writeFile(join(p.dir, ".env"), dotenv);
    expectSuccess(await p.cli(["env", "import", ".env"]));
    const json = await p.cli(["env", "export", "--format", "json"]);
    expect(JSON.parse(json.stdout)).toEqual({
      DATABASE_URL: "postgres://u:p@db/app",
      MULTI: "one\ntwo",
      QUOTED: 'it "is" $literal',
    });
    const exported = await p.cli(["env", "export", "--format", "dotenv"]);
    expectSuccess(await p.cli(["env", "import", "--env", "copy", "-"], { input: exported.stdout }));
    expect((await p.cli(["env", "export", "--env", "copy", "--format", "json"])).stdout).toBe(json.stdout);
  });
});

// What the installed command does at start-up, observed from outside: which of Node's modules a hot read loads
// (node:crypto costs 6–8 ms, so small file-store reads must open in JavaScript), which parts of the bundle it
// evaluates (noble's AES module builds its tables when evaluated, a few ms, so only a decryption may), and the
// launcher's private code cache (launcher/code-cache.ts): where it lives, its modes, one per command, written
// before `run` replaces itself, never holding a secret.
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  secretServiceAvailable,
  startSecretService,
  type SecretServiceSession,
} from "../packages/cli/test/support/secret-service.js";
import { requirePart } from "./support/prerequisites.js";
import { allFiles, expectSuccess, tempProject, type TempProject } from "./support/project.js";

const keychainReady = requirePart("the keychain start-up suite", secretServiceAvailable());

const projects: TempProject[] = [];
afterEach(async () => {
  await Promise.all(projects.splice(0).map((p) => p.cleanup()));
});

async function project(): Promise<TempProject> {
  const p = await tempProject();
  projects.push(p);
  return p;
}

const REGISTRY = "https://npm.startup.example/";
const ACCOUNT = "registry://npm.startup.example/";
const CANARY = "lk-canary-startup-3f9a1c-never-in-a-cache";

/** Runs `args` with a preload that records, at exit, the built-in modules Node loaded. */
async function modulesLoadedBy(
  p: TempProject,
  args: string[],
): Promise<{ stdout: string; modules: string[] }> {
  const hook = join(p.root, "record-modules.cjs");
  const out = join(p.root, "modules.json");
  await writeFile(
    hook,
    `process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.moduleLoadList)));`,
  );
  const result = await p.cli(args, { env: { NODE_OPTIONS: `--require ${hook}` } });
  expectSuccess(result);
  return { stdout: result.stdout, modules: JSON.parse(await readFile(out, "utf8")) as string[] };
}

// esbuild names the function that evaluates a bundled ES module after the module's path (relative to the
// checkout, which node_modules may be outside of).
const evaluatesAes = (ran: Set<string>) => [...ran].some((name) => name.endsWith("/@noble/ciphers/aes.js"));

/**
 * Runs `args` under V8's precise coverage (NODE_V8_COVERAGE) and returns the names of the functions of the fast
 * bundle that ran at least once.
 */
async function bundleFunctionsRunBy(
  p: TempProject,
  args: string[],
): Promise<{ stdout: string; ran: Set<string> }> {
  const dir = join(p.root, `coverage-${args.join("-").replace(/\W+/g, "_")}`);
  const result = await p.cli(args, { env: { NODE_V8_COVERAGE: dir } });
  expectSuccess(result);
  const ran = new Set<string>();
  let bundles = 0;
  for (const name of await readdir(dir)) {
    const { result: scripts } = JSON.parse(await readFile(join(dir, name), "utf8")) as {
      result: Array<{
        url: string;
        functions: Array<{ functionName: string; ranges: Array<{ count: number }> }>;
      }>;
    };
    for (const script of scripts.filter(({ url }) => url.endsWith("/packages/cli/dist/fast.cjs"))) {
      bundles++;
      for (const fn of script.functions) if (fn.ranges[0]!.count > 0) ran.add(fn.functionName);
    }
  }
  // Without the bundle in the report, "it did not run" would prove nothing.
  expect(bundles).toBe(1);
  return { stdout: result.stdout, ran };
}

describe("reads from the file store", () => {
  it("open a small store without loading node:crypto or the keychain module", async () => {
    const p = await project();
    expectSuccess(await p.cli(["keystore", "set", ACCOUNT], { input: CANARY }));
    for (const args of [
      ["token", "--registry", REGISTRY],
      ["keystore", "get", ACCOUNT],
    ]) {
      const { stdout, modules } = await modulesLoadedBy(p, args);
      expect(stdout.trim()).toBe(CANARY);
      expect(modules).not.toContain("NativeModule crypto");
      expect(modules.some((m) => m.includes("keyring"))).toBe(false);
    }
  });

  it("hand a store past the size limit (1 KiB, crypto/native.ts) to node:crypto", async () => {
    const p = await project();
    expectSuccess(await p.cli(["keystore", "set", "bulk"], { input: "x".repeat(1536) }));
    expectSuccess(await p.cli(["keystore", "set", ACCOUNT], { input: CANARY }));
    const { stdout, modules } = await modulesLoadedBy(p, ["token", "--registry", REGISTRY]);
    expect(stdout.trim()).toBe(CANARY);
    expect(modules).toContain("NativeModule crypto");
  });

  it("evaluate noble's AES module, to decrypt (what the keychain reads below must not do)", async () => {
    const p = await project();
    expectSuccess(await p.cli(["keystore", "set", ACCOUNT], { input: CANARY }));
    const { stdout, ran } = await bundleFunctionsRunBy(p, ["token", "--registry", REGISTRY]);
    expect(stdout.trim()).toBe(CANARY);
    expect(evaluatesAes(ran)).toBe(true);
  });
});

describe.skipIf(!keychainReady)("reads from the OS keychain", () => {
  let session: SecretServiceSession;
  beforeAll(async () => {
    session = await startSecretService({ variant: "unlocked" });
  });
  afterAll(() => session.stop());

  it("decrypt nothing, so never evaluate noble's AES module", async () => {
    const p = await tempProject({ keystoreEnv: session.env });
    projects.push(p);
    expectSuccess(await p.cli(["keystore", "set", ACCOUNT], { input: CANARY }));
    expect(existsSync(join(p.latchkeyHome, "store.enc"))).toBe(false);
    for (const args of [
      ["token", "--registry", REGISTRY],
      ["keystore", "get", ACCOUNT],
    ]) {
      const { stdout, ran } = await bundleFunctionsRunBy(p, args);
      expect(stdout.trim()).toBe(CANARY);
      expect(ran).toContain("runFastCommand");
      expect(evaluatesAes(ran), `${args.join(" ")} evaluated the AES module`).toBe(false);
    }
  });
});

describe("the launcher's code cache", () => {
  it("is kept per command under ~/.cache/latchkey, 0700 and 0600, and holds no secret", async () => {
    const p = await project();
    expectSuccess(await p.cli(["keystore", "set", ACCOUNT], { input: CANARY }));
    expectSuccess(await p.cli(["env", "set", `CANARY=${CANARY}`]));
    for (let i = 0; i < 2; i++) {
      const token = await p.cli(["token", "--registry", REGISTRY]);
      expectSuccess(token);
      expect(token.stdout.trim()).toBe(CANARY);
    }
    expectSuccess(await p.cli(["keystore", "get", ACCOUNT]));
    expectSuccess(await p.cli(["env", "get", "CANARY"]));
    // `run` replaces itself with the program (execve): it must save before, or it never would.
    expectSuccess(await p.cli(["run", "--", "true"]));
    const cache = join(p.home, ".cache", "latchkey");
    expect((await stat(cache)).mode & 0o777).toBe(0o700);
    const names = await readdir(cache);
    // `keystore set` and `env set` ran first, through the full CLI: they must not have left a cache that
    // lacks the functions of `keystore get` and `env get`, which then would never be saved.
    expect(
      names
        .filter((name) => name.startsWith("fast-"))
        .map((name) => name.split("-").slice(1, -3).join("-"))
        .sort(),
    ).toEqual(["env-get", "keystore-get", "other", "run", "token"]);
    for (const kind of ["token", "keystore-get", "env-get", "run", "other"]) {
      const file = names.find((name) => name.startsWith(`fast-${kind}-`));
      expect(file, `a cache for ${kind} in ${names.join(", ")}`).toBeDefined();
      expect((await stat(join(cache, file!))).mode & 0o777).toBe(0o600);
    }
    // The full CLI (keystore set, env set) keeps Node's own compile cache beside it.
    expect((await stat(join(cache, "node"))).isDirectory()).toBe(true);
    for (const file of await allFiles(p.root)) {
      expect((await readFile(file)).includes(Buffer.from(CANARY)), file).toBe(false);
    }
  });

  it("follows XDG_CACHE_HOME, and is off with NODE_DISABLE_COMPILE_CACHE", async () => {
    const p = await project();
    expectSuccess(await p.cli(["keystore", "set", ACCOUNT], { input: CANARY }));
    const xdg = join(p.root, "xdg-cache");
    expectSuccess(await p.cli(["token", "--registry", REGISTRY], { env: { XDG_CACHE_HOME: xdg } }));
    expect((await readdir(join(xdg, "latchkey"))).some((name) => name.startsWith("fast-token-"))).toBe(true);

    const off = await p.cli(["token", "--registry", REGISTRY], {
      env: { XDG_CACHE_HOME: join(p.root, "off"), NODE_DISABLE_COMPILE_CACHE: "1" },
    });
    expectSuccess(off);
    expect(off.stdout.trim()).toBe(CANARY);
    await expect(stat(join(p.root, "off"))).rejects.toThrow(/ENOENT/);
  });

  it("is not used from a directory other users can write", async () => {
    const p = await project();
    expectSuccess(await p.cli(["keystore", "set", ACCOUNT], { input: CANARY }));
    const shared = join(p.root, "shared");
    await mkdir(join(shared, "latchkey"), { recursive: true });
    await chmod(join(shared, "latchkey"), 0o777);
    const token = await p.cli(["token", "--registry", REGISTRY], { env: { XDG_CACHE_HOME: shared } });
    expectSuccess(token);
    expect(token.stdout.trim()).toBe(CANARY);
    expect(await readdir(join(shared, "latchkey"))).toEqual([]);
  });
});

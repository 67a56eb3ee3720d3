// `latchkey exec` inside a workspace package, with the real npm 11 and pnpm 12 against verdaccio (authentication
// required to read). The scope's registry is declared only in the workspace root's .npmrc, which is where npm (its
// local prefix is the root whose `workspaces` list the package) and pnpm (the pnpm-workspace.yaml root's file) read
// it from: exec must find it there and hand its token over, or the install gets a 401.
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, NO_DBUS } from "./support/cli.js";
import {
  CLIENTS,
  NODE,
  OFFLINE_ENV,
  TEST_PACKAGE,
  installClients,
  run,
  startClaimsRegistry,
  type Client,
} from "./support/package-managers.js";
import type { Verdaccio } from "./support/verdaccio.js";

let verdaccio: Verdaccio;
let tmp: { path: string; cleanup: () => Promise<void> };
let token: string;
let attempts = 0;

beforeAll(async () => {
  ({ verdaccio, tmp, token } = await startClaimsRegistry(
    "lk-e2e-exec-workspaces-",
    "frank",
    "workspace-claims-password-1",
  ));
});

afterAll(async () => {
  await verdaccio?.stop();
  await tmp?.cleanup();
});

/**
 * A workspace whose root declares the scope's registry and whose package `packages/a` depends on TEST_PACKAGE;
 * installs from the package's directory, directly or through `latchkey exec` (the token in its keystore).
 */
async function install(client: Client, root: Record<string, string>, viaExec: boolean): Promise<boolean> {
  const dir = join(tmp.path, `attempt-${++attempts}`);
  const ws = join(dir, "ws");
  const pkg = join(ws, "packages", "a");
  await mkdir(pkg, { recursive: true });
  for (const sub of ["home", "xdg", "tmp"]) await mkdir(join(dir, sub));
  for (const [name, text] of Object.entries(root)) await writeFile(join(ws, name), text);
  await writeFile(join(ws, ".npmrc"), `@lk-test:registry=${verdaccio.url}\n`);
  await writeFile(
    join(pkg, "package.json"),
    JSON.stringify({ name: "a", version: "0.0.0", private: true, dependencies: { [TEST_PACKAGE]: "1.0.0" } }),
  );
  const env = {
    PATH: await installClients(join(dir, "bin"), [client]),
    HOME: join(dir, "home"),
    XDG_CACHE_HOME: join(dir, "xdg", "cache"),
    XDG_DATA_HOME: join(dir, "xdg", "data"),
    XDG_STATE_HOME: join(dir, "xdg", "state"),
    XDG_CONFIG_HOME: join(dir, "xdg", "config"),
    TMPDIR: join(dir, "tmp"),
    LATCHKEY_HOME: join(dir, "lk-home"),
    LATCHKEY_KEYSTORE: "file",
    DBUS_SESSION_BUS_ADDRESS: NO_DBUS,
    LANG: "C.UTF-8",
    NO_COLOR: "1",
    ...OFFLINE_ENV,
  };
  // Stored with the keystore plumbing (the value on stdin), as `latchkey login` would after checking it.
  const stored = await run(NODE, [CLI, "keystore", "set", `registry:${verdaccio.nerfDart}`], {
    env,
    cwd: dir,
    input: token,
  });
  expect(stored.code, stored.stderr).toBe(0);
  const result = viaExec
    ? await run(NODE, [CLI, "exec", "--", client.command, "install"], { env, cwd: pkg })
    : await run(client.command, ["install"], { env, cwd: pkg });
  const installed = [ws, pkg].some((at) =>
    existsSync(join(at, "node_modules", "@lk-test", "pkg", "package.json")),
  );
  if (viaExec) expect(installed, `${result.stdout}${result.stderr}`).toBe(true);
  return installed;
}

describe("a registry declared only in the workspace root's .npmrc", () => {
  it(`npm ${CLIENTS.npm11.version}: found through the root whose workspaces list the package`, async () => {
    const root = {
      "package.json": JSON.stringify({ name: "ws", private: true, workspaces: ["packages/*"] }),
    };
    expect(await install(CLIENTS.npm11, root, false)).toBe(false);
    expect(await install(CLIENTS.npm11, root, true)).toBe(true);
  });

  it(`pnpm ${CLIENTS.pnpm12.version}: found through pnpm-workspace.yaml's root`, async () => {
    const root = {
      "package.json": JSON.stringify({ name: "ws", private: true }),
      "pnpm-workspace.yaml": "packages:\n  - packages/*\n",
    };
    expect(await install(CLIENTS.pnpm12, root, false)).toBe(false);
    expect(await install(CLIENTS.pnpm12, root, true)).toBe(true);
  });
});

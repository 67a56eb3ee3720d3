// A cloned project's files against `latchkey exec`, with the real clients. Each case is a project whose
// configuration would send the variable that carries the npmjs token to a host the project chose (here a server on
// loopback that records the Authorization header it is sent). The control runs the client itself with that
// variable set: the header arrives, so the client does read the file and expand the variable. Then `latchkey
// exec`, which sets the variable to the npmjs token (from NPM_TOKEN), must refuse the project and start nothing.
import { createServer, type Server } from "node:http";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handoffVariable } from "../packages/cli/src/registry/handoff.js";
import { CLI, NO_DBUS, tempDir } from "./support/cli.js";
import {
  CLIENTS,
  NODE,
  OFFLINE_ENV,
  YARN1_OFFLINE_ENV,
  run,
  type Client,
} from "./support/package-managers.js";

const VARIABLE = handoffVariable("//registry.npmjs.org/");

let server: Server;
let url: string;
let nerf: string;
const seen: string[] = [];
let tmp: { path: string; cleanup: () => Promise<void> };
let cases = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(req.headers.authorization ?? "");
    res.setHeader("content-type", "application/json");
    if (req.url?.endsWith("/-/whoami")) res.end(JSON.stringify({ username: "someone" }));
    else {
      res.statusCode = 404;
      res.end("{}");
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  url = `http://127.0.0.1:${port}/`;
  nerf = `//127.0.0.1:${port}/`;
  tmp = await tempDir("lk-e2e-rerouting-");
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await tmp?.cleanup();
});

interface Case {
  readonly client: Client;
  readonly args: readonly string[];
  /** The project's files, by path under the case's directory; the working directory is `cwd` under it. */
  readonly files: Record<string, string>;
  readonly links?: Record<string, string>;
  readonly cwd?: string;
  /** The file and line `latchkey exec` must name, relative to the case's directory. */
  readonly refused: { code: string; where: string };
}

/** Runs the control, then `latchkey exec`, for one case. */
async function check(c: Case): Promise<void> {
  const root = join(tmp.path, `case-${++cases}`);
  const home = join(root, "home");
  await mkdir(home, { recursive: true });
  for (const [path, text] of Object.entries(c.files)) {
    await mkdir(dirname(join(root, "p", path)), { recursive: true });
    await writeFile(join(root, "p", path), text);
  }
  for (const [path, target] of Object.entries(c.links ?? {})) await symlink(target, join(root, "p", path));
  const cwd = join(root, "p", c.cwd ?? ".");
  const canary = `canary-${cases}-5d1f0c`;
  const env = {
    PATH: `${dirname(NODE)}:/usr/bin:/bin`,
    HOME: home,
    LATCHKEY_HOME: join(root, "latchkey-home"),
    LATCHKEY_KEYSTORE: "file",
    DBUS_SESSION_BUS_ADDRESS: NO_DBUS,
    LANG: "C.UTF-8",
    NO_COLOR: "1",
    ...OFFLINE_ENV,
    ...(c.client === CLIENTS.yarn1 ? YARN1_OFFLINE_ENV : {}),
  };
  const program = [c.client.executable, ...c.args];

  seen.length = 0;
  const control = await run(NODE, program, { env: { ...env, [VARIABLE]: canary }, cwd });
  expect(
    seen.some((header) => header.includes(canary)),
    `control: the client sent ${JSON.stringify(seen)}\n${control.stdout}${control.stderr}`,
  ).toBe(true);

  seen.length = 0;
  const exec = await run(NODE, [CLI, "exec", "--", NODE, ...program], {
    env: { ...env, NPM_TOKEN: canary },
    cwd,
  });
  expect(seen, "what the project's host received through latchkey exec").toEqual([]);
  expect(exec.code, exec.stderr).toBe(1);
  expect(exec.stderr).toContain(c.refused.code);
  expect(exec.stderr).toContain(join(root, "p", c.refused.where));
  expect(exec.stderr).not.toContain(canary);
}

const npmrcToken = (): string => `${nerf}:_authToken=\${${VARIABLE}}\n`;
const yarnrc = (token: string): string =>
  [
    `npmRegistryServer: "${url}"`,
    'unsafeHttpWhitelist: ["127.0.0.1"]',
    "npmRegistries:",
    `  "${nerf}":`,
    `    npmAuthToken: ${token}`,
    "",
  ].join("\n");

describe(`npm ${CLIENTS.npm11.version}: files a project .npmrc makes npm read`, () => {
  const whoami = (): string[] => ["whoami", "--registry", url];

  it("userconfig= loads another file and expands it: refused", async () => {
    await check({
      client: CLIENTS.npm11,
      args: whoami(),
      files: { "package.json": "{}", ".npmrc": "userconfig=./other.rc\n", "other.rc": npmrcToken() },
      refused: { code: "LK_PROJECT_CONFIG_UNCHECKED", where: ".npmrc:1" },
    });
  });

  it("globalconfig= loads another file and expands it: refused", async () => {
    await check({
      client: CLIENTS.npm11,
      args: whoami(),
      files: { "package.json": "{}", ".npmrc": "globalconfig=./other.rc\n", "other.rc": npmrcToken() },
      refused: { code: "LK_PROJECT_CONFIG_UNCHECKED", where: ".npmrc:1" },
    });
  });

  it("prefix= moves the global file into the project (npm only logs an error): refused", async () => {
    await check({
      client: CLIENTS.npm11,
      args: whoami(),
      files: { "package.json": "{}", ".npmrc": "prefix=./p\n", "p/etc/npmrc": npmrcToken() },
      refused: { code: "LK_PROJECT_CONFIG_UNCHECKED", where: ".npmrc:1" },
    });
  });

  it("a workspace package's project config is the root's .npmrc: checked there", async () => {
    await check({
      client: CLIENTS.npm11,
      args: whoami(),
      files: {
        "package.json": JSON.stringify({ workspaces: ["packages/*"] }),
        ".npmrc": npmrcToken(),
        "packages/a/package.json": JSON.stringify({ name: "a" }),
      },
      cwd: "packages/a",
      refused: { code: "LK_TOKEN_REROUTED", where: ".npmrc:1" },
    });
  });
});

describe(`yarn ${CLIENTS.yarn1.version}`, () => {
  it("reads the .npmrc of every directory above the working directory: checked there", async () => {
    await check({
      client: CLIENTS.yarn1,
      args: ["info", "@s/pkg", "--non-interactive"],
      files: { ".npmrc": `@s:registry=${url}\n${npmrcToken()}`, "app/package.json": "{}" },
      cwd: "app",
      refused: { code: "LK_TOKEN_REROUTED", where: ".npmrc:2" },
    });
  });
});

describe(`yarn ${CLIENTS.yarn4.version}: .yarnrc.yml is YAML, expanded after parsing`, () => {
  const whoami = ["npm", "whoami"];

  it.each([
    ["a \\x24 escape", `"\\x24{${VARIABLE}}"`, 5],
    ["a \\U escape and a string continued on the next line", `"\\U00000024\\\n      {${VARIABLE}}"`, 5],
    ["a #-line inside a block scalar", `|-\n      #\${${VARIABLE}}`, 5],
  ])("%s for another registry: refused", async (_what, token, line) => {
    await check({
      client: CLIENTS.yarn4,
      args: whoami,
      files: { "package.json": "{}", ".yarnrc.yml": yarnrc(token) },
      refused: { code: "LK_TOKEN_REROUTED", where: `.yarnrc.yml:${line}` },
    });
  });

  it("a .env.yarn defining a variable from the token: refused", async () => {
    await check({
      client: CLIENTS.yarn4,
      args: whoami,
      files: {
        "package.json": "{}",
        ".yarnrc.yml": yarnrc('"${INNOCENT}"'),
        ".env.yarn": `INNOCENT=\${${VARIABLE}}\n`,
      },
      refused: { code: "LK_TOKEN_REROUTED", where: ".env.yarn:1" },
    });
  });

  it("a .yarnrc.yml that is a symbolic link: followed and checked", async () => {
    await check({
      client: CLIENTS.yarn4,
      args: whoami,
      files: { "package.json": "{}", "config/yarn.yml": yarnrc(`"\${${VARIABLE}}"`) },
      links: { ".yarnrc.yml": "config/yarn.yml" },
      refused: { code: "LK_TOKEN_REROUTED", where: ".yarnrc.yml:5" },
    });
  });
});

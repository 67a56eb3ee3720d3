// The JavaScript Secret Service read (secret-service.ts) against a real gnome-keyring in private D-Bus sessions
// (test/support/secret-service.ts): it must find exactly what @napi-rs/keyring finds, read back what it writes, and
// fail the way keyring.ts promises — all without loading the native module. libdbus, inside the native module,
// reads DBUS_SESSION_BUS_ADDRESS once per process, so this process talks to one unlocked session; the other
// sessions are exercised from child processes running a bundle of keyring.ts.
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bundleKeyringRunner,
  runKeyringRunner,
  withSecretService,
} from "../../test/support/keyring-runner.js";
import {
  secretServiceAvailable,
  startSecretService,
  type SecretServiceSession,
} from "../../test/support/secret-service.js";
import { createKeyringKeystore } from "./keyring.js";
import { readSecretService, unixSocketOf, type SecretServiceRead } from "./secret-service.js";

const availability = secretServiceAvailable();
if (!availability.ok) {
  if (process.env.CI === "true") {
    describe("Secret Service components", () => {
      it("are installed (under CI=true a missing component fails the suite)", () => {
        throw new Error(`Secret Service read suite cannot run: ${availability.reason}`);
      });
    });
  } else {
    console.warn(`secret-service-keyring.test.ts: skipping the gnome-keyring suites: ${availability.reason}`);
  }
}

/** Runs a command in `session`, its output as text. */
function inSession(
  session: SecretServiceSession,
  command: string,
  args: string[],
  input?: string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      args,
      { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...session.env }, timeout: 10_000 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${command} failed: ${stderr.trim() || error.message}`));
        else resolve(stdout);
      },
    );
    // A command that reads no stdin (secret-tool search) may be gone before this write: its EPIPE says nothing
    // that execFile's callback does not report.
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(input ?? "");
  });
}

// ---------------------------------------------------------------------------------------------------------------
// In this process, against one real unlocked gnome-keyring.

describe.skipIf(!availability.ok)("Secret Service read against gnome-keyring", () => {
  let session: SecretServiceSession;
  const saved = { address: process.env.DBUS_SESSION_BUS_ADDRESS, runtime: process.env.XDG_RUNTIME_DIR };
  // The native module alone (an injected `load` keeps every call on it), to compare against.
  const nativeOnly = () => createKeyringKeystore({ load: () => import("@napi-rs/keyring") });
  const read = (username: string, service = "latchkey"): Promise<SecretServiceRead> =>
    readSecretService({
      socketPath: unixSocketOf(session.env.DBUS_SESSION_BUS_ADDRESS!)!,
      attributes: { service, username },
      timeoutMs: 3000,
    });

  beforeAll(async () => {
    session = await startSecretService();
    // Before the native module's first connection: libdbus keeps the address it saw first.
    process.env.DBUS_SESSION_BUS_ADDRESS = session.env.DBUS_SESSION_BUS_ADDRESS;
    process.env.XDG_RUNTIME_DIR = session.env.XDG_RUNTIME_DIR;
  });
  afterAll(async () => {
    for (const [key, value] of [
      ["DBUS_SESSION_BUS_ADDRESS", saved.address],
      ["XDG_RUNTIME_DIR", saved.runtime],
    ] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    await session?.stop();
  });

  it("keyring-rs writes items whose attributes are service and username (plus the daemon's own schema)", async () => {
    await nativeOnly().set("attrs-account", "x");
    const search = await inSession(session, "dbus-send", [
      "--session",
      "--print-reply=literal",
      "--dest=org.freedesktop.secrets",
      "/org/freedesktop/secrets",
      "org.freedesktop.Secret.Service.SearchItems",
      "dict:string:string:service,latchkey,username,attrs-account",
    ]);
    const paths = search.match(/\/org\/freedesktop\/secrets\/collection\/[\w/]+/g) ?? [];
    expect(paths).toHaveLength(1);
    const attributes = await inSession(session, "dbus-send", [
      "--session",
      "--print-reply",
      "--dest=org.freedesktop.secrets",
      paths[0]!,
      "org.freedesktop.DBus.Properties.Get",
      "string:org.freedesktop.Secret.Item",
      "string:Attributes",
    ]);
    const pairs = [...attributes.matchAll(/string "([^"]*)"\s+string "([^"]*)"/g)].map((m) => [m[1], m[2]]);
    const attrs = Object.fromEntries(pairs) as Record<string, string>;
    expect(attrs).toMatchObject({ service: "latchkey", username: "attrs-account" });
    // Some gnome-keyring versions (the one CI installs) add xdg:schema themselves; nothing else may be there, or a
    // search by service and username could match items keyring-rs would tell apart.
    expect(
      Object.keys(attrs)
        .filter((k) => k !== "xdg:schema")
        .sort(),
    ).toEqual(["service", "username"]);
  });

  it("reads back what the native module wrote: ASCII, Unicode, empty and 64 KiB values", async () => {
    const values: Record<string, string> = {
      ascii: "npm_abcDEF0123456789",
      unicode: 'pässwörd — 秘密 — 🗝️ — \u00a0tab\there "quotes" \\ backslash',
      empty: "",
      large: Array.from({ length: 65536 }, (_, i) => String.fromCharCode(33 + (i % 90))).join(""),
    };
    const native = nativeOnly();
    const ks = createKeyringKeystore();
    for (const [account, value] of Object.entries(values)) {
      await native.set(`read:${account}`, value);
      // Compared as booleans: a mismatch must not print a secret-like value in the test output.
      const direct = await read(`read:${account}`);
      expect(direct.status).toBe("found");
      expect(direct.status === "found" && direct.value === value).toBe(true);
      expect((await ks.get(`read:${account}`)) === value).toBe(true);
      const probe = await ks.probe(`read:${account}`);
      expect(probe.reachable && probe.value === value).toBe(true);
    }
  });

  it("reads a missing account as null, like the native module", async () => {
    expect(await read("never-stored")).toEqual({ status: "missing" });
    expect(await createKeyringKeystore().get("never-stored")).toBeNull();
    expect(await createKeyringKeystore().probe("never-stored")).toEqual({ reachable: true, value: null });
    expect(await createKeyringKeystore().probe()).toEqual({ reachable: true });
    expect(await nativeOnly().get("never-stored")).toBeNull();
    // Another service's item of the same account is not ours.
    await createKeyringKeystore({ service: "latchkey-other" }).set("shared-name", "other");
    expect(await read("shared-name")).toEqual({ status: "missing" });
    expect(await createKeyringKeystore().get("shared-name")).toBeNull();
  });

  it("finds what the native module finds: items with more attributes, in another collection", async () => {
    // Stored by another program: an extra attribute, and one in gnome-keyring's session collection.
    await inSession(
      session,
      "secret-tool",
      ["store", "--label=extra", "service", "latchkey", "username", "extra-attr", "target", "elsewhere"],
      "extra-value",
    );
    await inSession(
      session,
      "secret-tool",
      [
        "store",
        "--label=s",
        "--collection=/org/freedesktop/secrets/collection/session",
        "service",
        "latchkey",
        "username",
        "in-session",
      ],
      "session-value",
    );
    for (const account of ["extra-attr", "in-session"]) {
      const native = await nativeOnly().get(account);
      expect(native).not.toBeNull();
      expect(await read(account)).toEqual({ status: "found", value: native });
      expect(await createKeyringKeystore().get(account)).toBe(native);
    }
  });

  it("leaves two matches to the native module, which reports them its own way", async () => {
    await nativeOnly().set("twice", "one");
    await inSession(
      session,
      "secret-tool",
      ["store", "--label=dup", "service", "latchkey", "username", "twice", "application", "other"],
      "two",
    );
    expect(await read("twice")).toEqual({ status: "defer", reason: "2 unlocked and 0 locked matches" });
    const native = await nativeOnly()
      .get("twice")
      .catch((e: unknown) => e);
    const combined = await createKeyringKeystore()
      .get("twice")
      .catch((e: unknown) => e);
    expect(native).toMatchObject({ code: expect.stringMatching(/^LK_KEYRING_/) as unknown });
    expect(combined).toMatchObject({ code: (native as { code: string }).code });
    expect(String((combined as Error).cause)).toBe(String((native as Error).cause));
  });
});

// ---------------------------------------------------------------------------------------------------------------
// In child processes: which modules a read loads, and the failure classes.

interface OpResult {
  ok: boolean;
  value?: unknown;
  code?: string;
  message?: string;
  cause?: string;
  /** Whether the native module had been loaded by the end of this op. */
  native: boolean;
}
type Op =
  | { op: "get"; account: string }
  | { op: "native-get"; account: string }
  | { op: "probe"; account?: string }
  | { op: "set"; account: string; value: string };

// Runs in the child. process.dlopen is how Node loads every native addon: a spy on it (and on the require cache,
// where the package's CommonJS entry would land) sees the native module load, whatever path leads there.
const RUNNER = `
const nativeLoads = [];
const dlopen = process.dlopen;
process.dlopen = function (...args) {
  nativeLoads.push(String(args[1]));
  return dlopen.apply(this, args);
};
const nativeLoaded = () =>
  nativeLoads.length > 0 || Object.keys(require.cache).some((path) => path.includes("@napi-rs"));
const { createKeyringKeystore } = await import("./keyring.js");
let input = "";
for await (const chunk of process.stdin) input += chunk;
const { ops, timeoutMs } = JSON.parse(input);
const ks = createKeyringKeystore({ timeoutMs });
const nativeOnly = createKeyringKeystore({ timeoutMs, load: () => import("@napi-rs/keyring") });
const results = [];
for (const op of ops) {
  try {
    let value;
    if (op.op === "get") value = await ks.get(op.account);
    else if (op.op === "native-get") value = await nativeOnly.get(op.account);
    else if (op.op === "set") value = await ks.set(op.account, op.value);
    else {
      const probe = await ks.probe(op.account);
      if (!probe.reachable) throw probe.error;
      value = probe;
    }
    results.push({ ok: true, value: value ?? null, native: nativeLoaded() });
  } catch (error) {
    results.push({ ok: false, code: error.code, message: error.message, cause: error.cause?.message, native: nativeLoaded() });
  }
}
process.stdout.write(JSON.stringify(results));
// A native call abandoned at its time limit still holds a libuv thread, which Node joins on exit: leave by execve.
process.execve("/bin/sh", ["sh", "-c", "exit 0"]);
`;

describe.skipIf(!availability.ok)("Secret Service read in a fresh process", () => {
  let dir: string;
  let runner: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "lk-ss-read-test-"));
    runner = await bundleKeyringRunner(RUNNER, dir);
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const run = (env: Record<string, string>, ops: Op[], timeoutMs?: number): Promise<OpResult[]> =>
    runKeyringRunner<Op, OpResult>(runner, env, ops, timeoutMs);
  const withSession = withSecretService;

  it("reads and probes without loading the native module (and a write, for contrast, loads it)", async () => {
    await withSession("unlocked", async (s) => {
      await inSession(
        s,
        "secret-tool",
        ["store", "--label=t", "service", "latchkey", "username", "stored"],
        "tok",
      );
      const [found, missing, probe, probeAccount, write] = await run(s.env, [
        { op: "get", account: "stored" },
        { op: "get", account: "absent" },
        { op: "probe" },
        { op: "probe", account: "stored" },
        { op: "set", account: "written", value: "v" },
      ]);
      expect(found).toMatchObject({ ok: true, value: "tok", native: false });
      expect(missing).toMatchObject({ ok: true, value: null, native: false });
      expect(probe).toMatchObject({ ok: true, value: { reachable: true }, native: false });
      expect(probeAccount).toMatchObject({
        ok: true,
        value: { reachable: true, value: "tok" },
        native: false,
      });
      expect(write).toMatchObject({ ok: true, native: true });
    });
  });

  it("locked collection: the same outcome as the native path, and no match is still null", async () => {
    await withSession("locked", async (s) => {
      const [combined, native, absent] = await run(s.env, [
        { op: "get", account: "seeded" },
        { op: "native-get", account: "seeded" },
        { op: "get", account: "absent" },
      ]);
      expect(combined).toMatchObject({ ok: false, code: "LK_KEYRING_LOCKED" });
      expect([combined?.code, combined?.message, combined?.cause]).toEqual([
        native?.code,
        native?.message,
        native?.cause,
      ]);
      expect(absent).toMatchObject({ ok: true, value: null });
    });
  });

  it("unreachable: a bus where nothing provides org.freedesktop.secrets, or no bus at all", async () => {
    await withSession("no-provider", async (s) => {
      const results = await run(s.env, [{ op: "get", account: "a" }, { op: "probe" }]);
      for (const r of results) {
        expect(r).toMatchObject({ ok: false, code: "LK_KEYRING_UNREACHABLE", native: false });
        expect(r.cause).toMatch(/^org\.freedesktop\.DBus\.Error\.ServiceUnknown: /);
      }
    });
    await withSession("no-bus", async (s) => {
      const [get] = await run(s.env, [{ op: "get", account: "a" }]);
      expect(get).toMatchObject({ ok: false, code: "LK_KEYRING_UNREACHABLE", native: false });
      expect(get?.cause).toMatch(/ENOENT/);
    });
  });

  it("leaves a bus address other than unix:path= / unix:abstract= to the native module", async () => {
    const [get] = await run({ DBUS_SESSION_BUS_ADDRESS: "tcp:host=127.0.0.1,port=9" }, [
      { op: "get", account: "a" },
    ]);
    expect(get).toMatchObject({ ok: false, native: true });
  });

  it("timeout: a socket that accepts and never answers, within the limit", async () => {
    const socketPath = join(dir, "silent-bus");
    const server: Server = createServer((socket) => socket.resume());
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    try {
      const results = await run(
        { DBUS_SESSION_BUS_ADDRESS: `unix:path=${socketPath}` },
        [{ op: "get", account: "a" }, { op: "probe" }],
        300,
      );
      // The read's own timer ended each call, not the native module, which would wait for good: its error names
      // the limit and has no cause.
      for (const r of results) {
        expect(r).toEqual({
          ok: false,
          code: "LK_KEYRING_TIMEOUT",
          message: "The OS keychain did not answer within 300 ms.",
          native: false,
        });
      }
    } finally {
      server.close();
    }
  });
});

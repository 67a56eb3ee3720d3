// The keychain backend against a real gnome-keyring in private D-Bus sessions (test/support/secret-service.ts),
// one session per failure class. libdbus, inside the native module, reads DBUS_SESSION_BUS_ADDRESS once per
// process, so this process talks only to the one unlocked session; every other session is exercised from a child
// process running a bundle of keyring.ts.
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  bundleKeyringRunner,
  runKeyringRunner,
  withSecretService,
} from "../../test/support/keyring-runner.js";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { keystoreContract } from "./contract.js";
import { ABANDONED_NATIVE_CALL, createKeyringKeystore, probeKeyring, type KeyringModule } from "./keyring.js";
import {
  secretServiceAvailable,
  startSecretService,
  type SecretServiceSession,
} from "../../test/support/secret-service.js";

const availability = secretServiceAvailable();
if (!availability.ok) {
  if (process.env.CI === "true") {
    describe("Secret Service components", () => {
      it("are installed (under CI=true a missing component fails the suite)", () => {
        throw new Error(`keyring suite cannot run: ${availability.reason}`);
      });
    });
  } else {
    console.warn(`keyring.test.ts: skipping the gnome-keyring suites: ${availability.reason}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Without the native module: the loading, time-box and error paths, with an injected module.

type FakeCall = (signal?: AbortSignal) => Promise<unknown>;
interface FakeBehaviour {
  construct?: (service: string, account: string, options: unknown) => void;
  getPassword?: FakeCall;
  setPassword?: (value: string, signal?: AbortSignal) => Promise<unknown>;
  deleteCredential?: FakeCall;
  find?: FakeCall;
}

function fakeModule(behaviour: FakeBehaviour): KeyringModule {
  const never = (): Promise<never> => new Promise<never>(() => {});
  class AsyncEntry {
    constructor(service: string, account: string, options: unknown) {
      behaviour.construct?.(service, account, options);
    }
    getPassword(signal?: AbortSignal) {
      return (behaviour.getPassword ?? never)(signal);
    }
    setPassword(value: string, signal?: AbortSignal) {
      return (behaviour.setPassword ?? never)(value, signal);
    }
    deleteCredential(signal?: AbortSignal) {
      return (behaviour.deleteCredential ?? never)(signal);
    }
  }
  const findCredentialsAsync = (_service: string, _target?: string | null, signal?: AbortSignal) =>
    (behaviour.find ?? never)(signal);
  return { AsyncEntry, findCredentialsAsync } as unknown as KeyringModule;
}

describe("keyring keystore (injected module)", () => {
  afterEach(() => {
    vi.useRealTimers();
    delete (globalThis as Record<symbol, unknown>)[ABANDONED_NATIVE_CALL];
  });

  it("loads the native module only on first use, and once", async () => {
    let loads = 0;
    const ks = createKeyringKeystore({
      load: () => {
        loads += 1;
        return Promise.resolve(
          fakeModule({ find: () => Promise.resolve([]), getPassword: () => Promise.resolve(null) }),
        );
      },
    });
    expect(loads).toBe(0);
    expect(await ks.list()).toEqual([]);
    expect(await ks.get("a")).toBeNull();
    expect(loads).toBe(1);
  });

  it("pins every entry to the Secret Service and reuses it per account", async () => {
    const constructed: unknown[] = [];
    const ks = createKeyringKeystore({
      service: "svc",
      load: () =>
        Promise.resolve(
          fakeModule({
            construct: (...args) => constructed.push(args),
            getPassword: () => Promise.resolve("v"),
            setPassword: () => Promise.resolve(),
          }),
        ),
    });
    await ks.set("acct", "v");
    await ks.get("acct");
    expect(constructed).toEqual([["svc", "acct", { linux: { store: "secret-service" } }]]);
  });

  it("lists each account once, sorted", async () => {
    const found = [
      { account: "b", password: "x" },
      { account: "a", password: "y" },
      { account: "b", password: "z" },
    ];
    const ks = createKeyringKeystore({
      load: () => Promise.resolve(fakeModule({ find: () => Promise.resolve(found) })),
    });
    expect(await ks.list()).toEqual(["a", "b"]);
  });

  it("time-boxes every call: at the limit, not before, it fails with LK_KEYRING_TIMEOUT and abandons the native call", async () => {
    vi.useFakeTimers();
    const abandoned = () => (globalThis as Record<symbol, unknown>)[ABANDONED_NATIVE_CALL] === true;
    const signals: AbortSignal[] = [];
    const hang: FakeCall = (signal) => {
      if (signal) signals.push(signal);
      return new Promise<never>(() => {});
    };
    const ks = createKeyringKeystore({
      timeoutMs: 50,
      load: () =>
        Promise.resolve(
          fakeModule({
            getPassword: hang,
            setPassword: (_v, s) => hang(s),
            deleteCredential: hang,
            find: hang,
          }),
        ),
    });
    const calls = [
      ["get", () => ks.get("a")],
      ["set", () => ks.set("a", "v")],
      ["delete", () => ks.delete("a")],
      ["list", () => ks.list()],
    ] as const;
    for (const [operation, call] of calls) {
      let outcome: unknown = "pending";
      void call().then(
        () => (outcome = "resolved"),
        (error: unknown) => (outcome = error),
      );
      await vi.advanceTimersByTimeAsync(49);
      expect(outcome, operation).toBe("pending");
      expect(signals.at(-1)?.aborted, operation).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(outcome, operation).toMatchObject({
        code: "LK_KEYRING_TIMEOUT",
        message: "The OS keychain did not answer within 50 ms.",
        details: { operation, timeoutMs: 50 },
      });
      expect(signals.at(-1)?.aborted, operation).toBe(true);
    }
    expect(signals).toHaveLength(4);
    // The hung calls still hold their threads: the CLI's entry must leave by execve (main.ts).
    expect(abandoned()).toBe(true);

    let probe: unknown = "pending";
    void probeKeyring({
      timeoutMs: 50,
      load: () => Promise.resolve(fakeModule({ getPassword: hang })),
    }).then((p) => (probe = p));
    await vi.advanceTimersByTimeAsync(50);
    expect(probe).toMatchObject({
      reachable: false,
      error: { code: "LK_KEYRING_TIMEOUT", details: { operation: "probe", timeoutMs: 50 } },
    });
  });

  it("clears the time limit of a call that answered: nothing is abandoned", async () => {
    vi.useFakeTimers();
    const ks = createKeyringKeystore({
      timeoutMs: 50,
      load: () => Promise.resolve(fakeModule({ getPassword: () => Promise.resolve("v") })),
    });
    expect(await ks.get("a")).toBe("v");
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(1000);
    expect((globalThis as Record<symbol, unknown>)[ABANDONED_NATIVE_CALL]).toBeUndefined();
  });

  it("classifies failures, with the account in details and never the value", async () => {
    const value = "s3cret-value-never-in-errors";
    const ks = createKeyringKeystore({
      load: () =>
        Promise.resolve(
          fakeModule({
            setPassword: () =>
              Promise.reject(
                new Error("Couldn't access platform storage: Secret Service: unlock prompt was dismissed"),
              ),
          }),
        ),
    });
    const error = await ks.set("registry://npm.example/", value).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: "LK_KEYRING_LOCKED",
      details: { operation: "set", account: "registry://npm.example/" },
    });
    const shown = JSON.stringify(error) + String(error) + String((error as Error).cause);
    expect(shown).not.toContain(value);
  });

  it("classifies a constructor that throws, in calls and in the probe", async () => {
    const load = () =>
      Promise.resolve(
        fakeModule({
          construct: () => {
            throw new Error(
              "Platform failure: DBus error: The name org.freedesktop.secrets was not provided by any .service files",
            );
          },
        }),
      );
    await expect(createKeyringKeystore({ load }).get("a")).rejects.toMatchObject({
      code: "LK_KEYRING_UNREACHABLE",
    });
    expect(await probeKeyring({ load })).toMatchObject({
      reachable: false,
      error: { code: "LK_KEYRING_UNREACHABLE" },
    });
  });

  it("reports a module that cannot be loaded as unreachable", async () => {
    const load = () => Promise.reject(new Error("Cannot find native binding"));
    await expect(createKeyringKeystore({ load }).get("a")).rejects.toMatchObject({
      code: "LK_KEYRING_UNREACHABLE",
    });
    expect(await probeKeyring({ load })).toMatchObject({
      reachable: false,
      error: { code: "LK_KEYRING_UNREACHABLE" },
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// In this process, against one real unlocked gnome-keyring.

describe.skipIf(!availability.ok)("keyring keystore against gnome-keyring", () => {
  let session: SecretServiceSession;
  const saved = { address: process.env.DBUS_SESSION_BUS_ADDRESS, runtime: process.env.XDG_RUNTIME_DIR };

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

  keystoreContract("keyring (gnome-keyring)", async () => {
    const ks = createKeyringKeystore();
    for (const account of await ks.list()) await ks.delete(account);
    return ks;
  });

  const lookup = (account: string) => session.secretToolLookup({ service: "latchkey", username: account });

  it("stores items where secret-tool finds them (attributes service, username), and deletes them there", async () => {
    const ks = createKeyringKeystore();
    const value = "tøken — 秘密 🔑";
    await ks.set("registry://npm.example/", value);
    expect(await lookup("registry://npm.example/")).toBe(value);
    await ks.set("empty", "");
    expect(await lookup("empty")).toBe("");
    expect(await ks.delete("registry://npm.example/")).toBe(true);
    expect(await lookup("registry://npm.example/")).toBeNull();
    await ks.delete("empty");
  });

  it("lists only its own service", async () => {
    await createKeyringKeystore({ service: "latchkey-other" }).set("foreign", "x");
    await createKeyringKeystore().set("mine", "y");
    expect(await createKeyringKeystore().list()).toContain("mine");
    expect(await createKeyringKeystore().list()).not.toContain("foreign");
    expect(await createKeyringKeystore({ service: "latchkey-other" }).list()).toEqual(["foreign"]);
  });

  it("probes as reachable", async () => {
    expect(await probeKeyring()).toEqual({ reachable: true });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Each failure class for real, in a child process per session.

interface OpResult {
  ok: boolean;
  value?: unknown;
  code?: string;
  message?: string;
  cause?: string;
}
type Op =
  | { op: "probe" }
  | { op: "get"; account: string }
  | { op: "set"; account: string; value: string }
  | { op: "delete"; account: string }
  | { op: "list" }
  | { op: "freeze"; pid: number };

// Runs in the child: the ops arrive on stdin (values never go through argv), results leave on stdout.
const RUNNER = `
import { createKeyringKeystore, probeKeyring } from "./keyring.js";
let input = "";
for await (const chunk of process.stdin) input += chunk;
const { ops, timeoutMs } = JSON.parse(input);
const ks = createKeyringKeystore({ timeoutMs });
const results = [];
for (const op of ops) {
  try {
    let value;
    if (op.op === "probe") {
      const probe = await probeKeyring({ timeoutMs });
      if (!probe.reachable) throw probe.error;
      value = "reachable";
    } else if (op.op === "get") value = await ks.get(op.account);
    else if (op.op === "set") value = await ks.set(op.account, op.value);
    else if (op.op === "delete") value = await ks.delete(op.account);
    else if (op.op === "freeze") value = process.kill(op.pid, "SIGSTOP");
    else value = await ks.list();
    results.push({ ok: true, value: value ?? null });
  } catch (error) {
    results.push({ ok: false, code: error.code, message: error.message, cause: error.cause?.message });
  }
}
process.stdout.write(JSON.stringify(results));
// A timed-out native call still holds a libuv thread, and Node joins those threads on exit, even in process.exit():
// replace the process instead. (Writes to a pipe are synchronous on Linux, so the output is already out.)
process.execve("/bin/sh", ["sh", "-c", "exit 0"]);
`;

describe.skipIf(!availability.ok)("keyring failure classes, for real", () => {
  let dir: string;
  let runner: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "lk-keyring-test-"));
    runner = await bundleKeyringRunner(RUNNER, dir);
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const run = (env: Record<string, string>, ops: Op[], timeoutMs?: number): Promise<OpResult[]> =>
    runKeyringRunner<Op, OpResult>(runner, env, ops, timeoutMs);
  const withSession = withSecretService;

  it("unreachable: no D-Bus at all (address of a missing socket, or no address)", async () => {
    await withSession("no-bus", async (s) => {
      const results = await run(s.env, [{ op: "probe" }, { op: "get", account: "a" }, { op: "list" }]);
      for (const r of results) expect(r).toMatchObject({ ok: false, code: "LK_KEYRING_UNREACHABLE" });
      expect(results[0]?.cause).toMatch(/ENOENT/);
      const { DBUS_SESSION_BUS_ADDRESS: _unset, ...withoutAddress } = s.env;
      const [probe] = await run(withoutAddress, [{ op: "probe" }]);
      expect(probe).toMatchObject({ ok: false, code: "LK_KEYRING_UNREACHABLE" });
      expect(probe?.message).toMatch(/DBUS_SESSION_BUS_ADDRESS is not set/);
    });
  });

  it("unreachable: a bus with no Secret Service provider", async () => {
    await withSession("no-provider", async (s) => {
      const results = await run(s.env, [
        { op: "probe" },
        { op: "get", account: "a" },
        { op: "set", account: "a", value: "v" },
        { op: "list" },
      ]);
      for (const r of results) expect(r).toMatchObject({ ok: false, code: "LK_KEYRING_UNREACHABLE" });
      // Reads go through the JavaScript client (secret-service.ts), which quotes the bus's error by name; writes and
      // listing through the native module, which quotes libdbus.
      const [probe, get, set, list] = results;
      for (const r of [probe, get]) {
        expect(r?.cause).toBe(
          "org.freedesktop.DBus.Error.ServiceUnknown: The name org.freedesktop.secrets was not provided by any .service files",
        );
      }
      for (const r of [set, list]) {
        expect(r?.cause).toBe(
          "Platform failure: DBus error: The name org.freedesktop.secrets was not provided by any .service files",
        );
      }
    });
  });

  it("locked: the login collection locked, no prompter", async () => {
    await withSession("locked", async (s) => {
      const [probe, get, set, del, list, absent] = await run(s.env, [
        { op: "probe" },
        { op: "get", account: "seeded" },
        { op: "set", account: "new", value: "v" },
        { op: "delete", account: "seeded" },
        { op: "list" },
        { op: "get", account: "absent" },
      ]);
      // A locked keychain is there: the probe says so, and each call that needs it unlocked says it is locked.
      expect(probe).toMatchObject({ ok: true, value: "reachable" });
      for (const r of [get, set, del, list])
        expect(r).toMatchObject({ ok: false, code: "LK_KEYRING_LOCKED" });
      expect(get?.cause).toBe(
        "Couldn't access platform storage: Secret Service: unlock prompt was dismissed",
      );
      expect(list?.cause).toBe(
        "zbus error: org.freedesktop.Secret.Error.IsLocked: Cannot get secret of a locked object",
      );
      // Nothing matches, so nothing needs unlocking.
      expect(absent).toMatchObject({ ok: true, value: null });
    });
  });

  it("locked: a keyring daemon that was never unlocked has no default collection", async () => {
    await withSession("uninitialised", async (s) => {
      const [probe, set] = await run(s.env, [{ op: "probe" }, { op: "set", account: "a", value: "v" }]);
      // No items yet, so the probe cannot see it; the first write says so.
      expect(probe).toMatchObject({ ok: true });
      expect(set).toMatchObject({ ok: false, code: "LK_KEYRING_LOCKED" });
      expect(set?.cause).toMatch(/Secret Service: no result found/);
    });
  });

  it("denied: a bus policy rejecting messages to org.freedesktop.secrets", async () => {
    await withSession("denied", async (s) => {
      const results = await run(s.env, [{ op: "probe" }, { op: "get", account: "a" }, { op: "list" }]);
      for (const r of results) {
        expect(r).toMatchObject({ ok: false, code: "LK_KEYRING_DENIED" });
        expect(r.cause).toMatch(
          /^Platform failure: DBus error: Rejected send message, .* member="OpenSession"/,
        );
      }
    });
  });

  it("timeout: a keyring daemon that stops answering", async () => {
    await withSession("unlocked", async (s) => {
      try {
        const [stored, before, frozen, stalled, probe, write, newEntry] = await run(
          s.env,
          [
            { op: "set", account: "a", value: "v" },
            { op: "get", account: "a" },
            { op: "freeze", pid: s.providerPid ?? 0 },
            { op: "get", account: "a" },
            { op: "probe" },
            { op: "set", account: "a", value: "w" },
            { op: "set", account: "b", value: "w" },
          ],
          800,
        );
        expect([stored?.ok, before?.value, frozen?.ok]).toEqual([true, "v", true]);
        // Our own timer's error names the limit and has no cause; libdbus's NoReply (below) has one.
        const ourTimeout = {
          ok: false,
          code: "LK_KEYRING_TIMEOUT",
          message: "The OS keychain did not answer within 800 ms.",
          cause: undefined,
        };
        // Reads go through the JavaScript client (secret-service.ts): the bus answers, the daemon does not, and
        // the read's own timer ends it.
        expect(stalled).toEqual(ourTimeout);
        expect(probe).toEqual(ourTimeout);
        // The entry exists, so the native write waits on the thread pool: our timer ends it.
        expect(write).toEqual(ourTimeout);
        // A new entry's constructor blocks until libdbus gives up (2 s), with D-Bus's NoReply text.
        expect(newEntry).toMatchObject({ ok: false, code: "LK_KEYRING_TIMEOUT" });
        expect(newEntry?.cause).toMatch(/^Platform failure: DBus error: Did not receive a reply/);
      } finally {
        s.thawProvider();
      }
    });
  });

  it("timeout: a session bus that accepts connections and never answers", async () => {
    const socketPath = join(dir, "silent-bus");
    const server: Server = createServer(() => {});
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    try {
      const results = await run(
        { DBUS_SESSION_BUS_ADDRESS: `unix:path=${socketPath}` },
        [{ op: "probe" }, { op: "get", account: "a" }],
        300,
      );
      // Our own timer ended each call (libdbus alone would wait for good): its error names the limit.
      for (const r of results) {
        expect(r).toMatchObject({ ok: false, code: "LK_KEYRING_TIMEOUT" });
        expect(r.message).toMatch(/ did not answer within 300 ms\.$/);
        expect(r.cause).toBeUndefined();
      }
    } finally {
      server.close();
    }
  });

  it("finds the bus at $XDG_RUNTIME_DIR/bus when DBUS_SESSION_BUS_ADDRESS is unset", async () => {
    await withSession("unlocked", async (s) => {
      const { DBUS_SESSION_BUS_ADDRESS: _unset, ...withoutAddress } = s.env;
      const results = await run(withoutAddress, [
        { op: "probe" },
        { op: "set", account: "via-runtime-dir", value: "v" },
        { op: "get", account: "via-runtime-dir" },
      ]);
      expect(results.map((r) => (r.ok ? r.value : r.code))).toEqual(["reachable", null, "v"]);
      expect(await s.secretToolLookup({ service: "latchkey", username: "via-runtime-dir" })).toBe("v");
    });
  });
});

// The OS keychain backend, over @napi-rs/keyring (keyring-rs: Secret Service on Linux, Keychain on macOS,
// Credential Manager on Windows). What the library does, measured against gnome-keyring, and what this file does
// about it:
// - The native module is loaded on first use, by dynamic import: commands that need no secret never pay for it
//   (the CLI bundle keeps it external).
// - Without options, a Linux entry silently falls back to the kernel keyutils keyring (in memory, lost on reboot)
//   when no Secret Service answers. Every entry is pinned to the Secret Service, so "no keychain" is an error
//   that keystore resolution can see, never a silent move to another store.
// - A Linux entry's constructor connects to D-Bus synchronously, on this thread: libdbus has no time limit on the
//   connection handshake (a bus that accepts and never answers blocks the process for good), and calls to a
//   provider that does not answer block for dbus-secret-service's own limit (2 s, then NoReply). So before the
//   first constructor, an asynchronous check makes sure the session bus answers at all (checkSessionBus).
// - The async calls run on libuv's thread pool. Their AbortSignal only cancels a call that has not started yet, so
//   each call also races a timer: a hung call yields LK_KEYRING_TIMEOUT on time. The hung call still holds its
//   thread until it ends, and Node joins the pool's threads on exit, so neither a drained event loop nor
//   process.exit() ends the process before it does (only a signal or process.execve does). Entry calls end within
//   libdbus's 2 s per-message limit, except while an unlock prompt waits for the user; listing (zbus) has no limit,
//   which is why list() makes a bounded round trip first.
// - libdbus reads DBUS_SESSION_BUS_ADDRESS once per process (later changes are ignored); zbus, used for listing,
//   reads it on every call.
// - Reads on the session-bus platforms do not need the library at all: loading it and constructing an entry cost
//   ~12 ms, most of `latchkey token`. get() and probe() go straight over the bus socket (secret-service.ts, ~2 ms)
//   and hand every case that client does not settle (locked or several matches, errors other than "no provider",
//   non-unix bus addresses) to the native call, so behaviour and errors stay the library's. Writes, deletes and
//   listing stay on the native module.
import type * as NativeKeyring from "@napi-rs/keyring";
import { LatchkeyError } from "@latchkey/core";
import { importExternal } from "../external.js";
import { classifyKeyringError } from "./keyring-errors.js";
import {
  SESSION_BUS_PLATFORMS,
  readSecretService,
  sessionBusAddress,
  unixSocketOf,
} from "./secret-service.js";
import { KEYSTORE_SERVICE, type Keystore } from "./types.js";

/**
 * Set on globalThis when a native call was abandoned at its time limit. Its thread is still blocked, and Node joins
 * the pool's threads at exit, so process.exit() would hang: the CLI's entry point checks this flag and leaves by
 * process.execve instead (main.ts).
 */
export const ABANDONED_NATIVE_CALL = Symbol.for("latchkey.abandonedNativeCall");

function markNativeCallAbandoned(): void {
  (globalThis as Record<symbol, unknown>)[ABANDONED_NATIVE_CALL] = true;
}

/** The native module's shape, as a `load` option must provide it. */
export type KeyringModule = typeof NativeKeyring;

/** Options for createKeyringKeystore and probeKeyring. */
export interface KeyringOptions {
  /** Time limit for each keychain call, in milliseconds. */
  timeoutMs?: number;
  /** The keychain service every account lives under. */
  service?: string;
  /**
   * Loads the native module (tests inject fakes). The default first checks that the D-Bus session bus answers.
   * Given, it also serves reads, which otherwise go over the session bus without the native module.
   */
  load?: () => Promise<KeyringModule>;
}

/**
 * What keystore resolution learns from a probe. When the probe read a real account (see {@link KeyringKeystore}),
 * `value` is what that account holds, so the caller need not ask again.
 */
export type KeyringProbe =
  { reachable: true; value?: string | null } | { reachable: false; error: LatchkeyError };

/** The OS keychain keystore, plus the probe keystore resolution runs on the same connection cache. */
export interface KeyringKeystore extends Keystore {
  /**
   * Checks the keychain can be used right now, without prompting. With `account`, the check is a real read of
   * it (each read sets up its own D-Bus connection and Secret Service session), so a command about to read one
   * account pays for one read instead of two.
   */
  probe(account?: string): Promise<KeyringProbe>;
}

/** The default time limit for one keychain call. */
export const DEFAULT_KEYRING_TIMEOUT_MS = 3000;

const SECRET_SERVICE_ONLY = { linux: { store: "secret-service" } } as const;

/** Resolves when the session bus answers a first handshake line; throws LK_KEYRING_UNREACHABLE / _TIMEOUT. */
async function checkSessionBus(timeoutMs: number): Promise<void> {
  if (!SESSION_BUS_PLATFORMS.has(process.platform)) return;
  const socketPath = unixSocketOf(sessionBusAddress());
  if (socketPath === null) return; // tcp, launchd, …: left to the library

  // node:net is loaded only here: commands that never reach the keychain should not pay for it.
  const { connect } = await import("node:net");
  await new Promise<void>((resolve, reject) => {
    const socket = connect(socketPath);
    let settled = false;
    const finish = (error?: LatchkeyError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve();
    };
    const timer = setTimeout(() => {
      finish(
        new LatchkeyError("LK_KEYRING_TIMEOUT", {
          message: `The D-Bus session bus did not answer within ${timeoutMs} ms.`,
          details: { operation: "connect", timeoutMs },
        }),
      );
    }, timeoutMs);
    // The bus answers any client's first line, even a bare AUTH without a mechanism ("REJECTED EXTERNAL"): that
    // proves a live bus without authenticating or sending a message.
    socket.once("connect", () => socket.end("\0AUTH\r\n"));
    socket.once("data", () => finish());
    socket.once("error", (error) => {
      finish(
        new LatchkeyError("LK_KEYRING_UNREACHABLE", {
          message: "The D-Bus session bus is not reachable.",
          cause: new Error(error.message),
        }),
      );
    });
    socket.once("close", () => {
      finish(
        new LatchkeyError("LK_KEYRING_UNREACHABLE", {
          message: "The D-Bus session bus closed the connection.",
        }),
      );
    });
  });
}

let defaultModule: Promise<KeyringModule> | undefined;

/** The real native module, after the session bus check; shared by the process, as libdbus's own state is. */
function loadDefault(timeoutMs: number): Promise<KeyringModule> {
  defaultModule ??= (async () => {
    await checkSessionBus(timeoutMs);
    return importExternal("@napi-rs/keyring");
  })();
  // A failed check is not remembered: the next call looks again.
  defaultModule.catch(() => {
    defaultModule = undefined;
  });
  return defaultModule;
}

/** Runs `load`, turning a module that cannot be loaded into LK_KEYRING_UNREACHABLE. */
async function loadModule(options: KeyringOptions, timeoutMs: number): Promise<KeyringModule> {
  try {
    return await (options.load ? options.load() : loadDefault(timeoutMs));
  } catch (error) {
    if (error instanceof LatchkeyError) throw error;
    throw new LatchkeyError("LK_KEYRING_UNREACHABLE", {
      message: "The OS keychain module could not be loaded.",
      cause: new Error(error instanceof Error ? error.message : String(error)),
    });
  }
}

/**
 * Runs one keychain call under the time limit (`limitMs`, when what is left of `timeoutMs` is less). `run` receives
 * the signal to hand to the native call; whatever it throws or rejects with is classified. The timer is cleared as
 * soon as the call settles.
 */
function timeBoxed<T>(
  timeoutMs: number,
  details: Record<string, unknown>,
  run: (signal: AbortSignal) => Promise<T>,
  limitMs = timeoutMs,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const controller = new AbortController();
    const timer = setTimeout(() => {
      controller.abort();
      markNativeCallAbandoned();
      reject(
        new LatchkeyError("LK_KEYRING_TIMEOUT", {
          message: `The OS keychain did not answer within ${timeoutMs} ms.`,
          details: { ...details, timeoutMs },
        }),
      );
    }, limitMs);
    const fail = (error: unknown): void => {
      clearTimeout(timer);
      reject(classifyKeyringError(error, details));
    };
    let pending: Promise<T>;
    try {
      pending = run(controller.signal);
    } catch (error) {
      fail(error);
      return;
    }
    pending.then((value) => {
      clearTimeout(timer);
      resolve(value);
    }, fail);
  });
}

function timeoutOf(options: KeyringOptions): number {
  const timeoutMs = options.timeoutMs ?? DEFAULT_KEYRING_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: `The keychain time limit must be positive (${timeoutMs}).`,
    });
  }
  return timeoutMs;
}

// An account nothing stores: reading it proves the Secret Service answers, and with no matching item nothing needs
// unlocking, so it never prompts.
const PROBE_ACCOUNT = "latchkey:probe (never stored)";

type Call = <T>(
  operation: string,
  account: string | undefined,
  run: (native: KeyringModule, signal: AbortSignal) => Promise<T>,
  deadline?: number,
) => Promise<T>;

/** The per-keystore plumbing: lazy module, entry cache, and the time-boxed, classified call. */
function keyringCalls(options: KeyringOptions): {
  call: Call;
  entryFor: (native: KeyringModule, account: string) => NativeKeyring.AsyncEntry;
  service: string;
  timeoutMs: number;
} {
  const timeoutMs = timeoutOf(options);
  const service = options.service ?? KEYSTORE_SERVICE;
  let loaded: Promise<KeyringModule> | undefined;
  // Each constructor opens its own D-Bus connection: reuse entries for the life of the keystore.
  const entries = new Map<string, NativeKeyring.AsyncEntry>();
  const entryFor = (native: KeyringModule, account: string): NativeKeyring.AsyncEntry => {
    let entry = entries.get(account);
    if (entry === undefined) {
      entry = new native.AsyncEntry(service, account, SECRET_SERVICE_ONLY);
      entries.set(account, entry);
    }
    return entry;
  };
  const call: Call = async (operation, account, run, deadline) => {
    const details = account === undefined ? { operation } : { operation, account };
    loaded ??= loadModule(options, timeoutMs).catch((error: unknown) => {
      loaded = undefined;
      throw error;
    });
    const native = await loaded;
    const limitMs = deadline === undefined ? timeoutMs : Math.max(1, deadline - Date.now());
    return timeBoxed(timeoutMs, details, (signal) => run(native, signal), limitMs);
  };
  return { call, entryFor, service, timeoutMs };
}

/**
 * Reads `account` through the JavaScript Secret Service client (secret-service.ts) when that can answer for the
 * native module: without an injected module, on a session-bus platform, over a unix socket. Resolves `{ value }`
 * when it answered, or `{ deadline }` when the native path must answer instead, with the deadline it must keep
 * (one time limit covers both). `details` (non-secret) go into its errors.
 */
async function readOverSessionBus(
  options: KeyringOptions,
  timeoutMs: number,
  service: string,
  account: string,
  details: Record<string, unknown>,
): Promise<{ value: string | null } | { deadline: number | undefined }> {
  if (options.load !== undefined || !SESSION_BUS_PLATFORMS.has(process.platform))
    return { deadline: undefined };
  const deadline = Date.now() + timeoutMs;
  let socketPath: string | null;
  try {
    socketPath = unixSocketOf(sessionBusAddress());
  } catch (error) {
    throw error instanceof LatchkeyError
      ? new LatchkeyError(error.code, { message: error.message, details })
      : error;
  }
  if (socketPath === null) return { deadline: undefined }; // tcp, launchd, …: left to the library
  const read = await readSecretService({
    socketPath,
    // The attributes keyring-rs gives the items it writes, and searches by (secret-service.ts).
    attributes: { service, username: account },
    timeoutMs,
    details,
  });
  if (read.status === "found") return { value: read.value };
  if (read.status === "missing") return { value: null };
  return { deadline };
}

/**
 * The OS keychain as a Keystore: one item per account under service `latchkey`, every call time-boxed
 * (default 3 s). Values are stored as UTF-8 strings: keyring-rs stores "" as an empty secret and reads it back as
 * "" (not as "missing"), so empty values need no special encoding. Nothing is loaded until the first call.
 */
export function createKeyringKeystore(options: KeyringOptions = {}): KeyringKeystore {
  const { call, entryFor, service, timeoutMs } = keyringCalls(options);
  // Reads go through the JavaScript client where it can answer (no native module loaded, ~2 ms instead of ~12), and
  // through the native module for everything else, with the time that is left.
  // `account` undefined is the probe's: it reads PROBE_ACCOUNT, and its errors name no account.
  const read = async (operation: string, account: string | undefined): Promise<string | null> => {
    const target = account ?? PROBE_ACCOUNT;
    const details = account === undefined ? { operation } : { operation, account };
    const fast = await readOverSessionBus(options, timeoutMs, service, target, details);
    if ("value" in fast) return fast.value;
    return call(
      operation,
      account,
      (native, signal) => entryFor(native, target).getPassword(signal),
      fast.deadline,
    );
  };
  return {
    kind: "keyring",
    probe: async (account) => {
      try {
        const value = await read("probe", account);
        return account === undefined ? { reachable: true } : { reachable: true, value };
      } catch (error) {
        return { reachable: false, error: classifyKeyringError(error, { operation: "probe" }) };
      }
    },
    get: (account) => read("get", account),
    set: (account, value) =>
      call("set", account, (native, signal) => entryFor(native, account).setPassword(value, signal)),
    delete: (account) =>
      call("delete", account, (native, signal) => entryFor(native, account).deleteCredential(signal)),
    list: () =>
      call("list", undefined, async (native, signal) => {
        // Listing goes through zbus, which has no time limit of its own: a provider that stopped answering would
        // hold a thread (and process exit) for good. Constructing an entry first is a round trip under libdbus's
        // limit, so a dead provider fails here rather than there.
        entryFor(native, PROBE_ACCOUNT);
        const found = await native.findCredentialsAsync(service, null, signal);
        return [...new Set(found.map((credential) => credential.account))].sort();
      }),
  };
}

/**
 * A standalone probe (resolution itself calls KeyringKeystore.probe on the keystore it goes on to use, so the
 * connection is shared). Tells whether the OS keychain can be used right now, without prompting: it opens a Secret
 * Service session and reads an account that is never stored. Unreachable (no D-Bus, no provider), denied and timed
 * out come back as the classified error, so the caller falls back to the file store only when the keychain is
 * absent. A locked collection counts as reachable — it is there, and holds or will hold the user's secrets — and
 * the first call that needs it unlocked reports LK_KEYRING_LOCKED (or prompts, on a desktop).
 */
export function probeKeyring(options: KeyringOptions = {}): Promise<KeyringProbe> {
  return createKeyringKeystore(options).probe();
}

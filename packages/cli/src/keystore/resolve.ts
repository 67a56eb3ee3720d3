import { LatchkeyError, isLatchkeyError, isTable } from "@latchkey/core";
import type { Context } from "../context.js";
import { readKeystoreState } from "../fast-readers.js";
import { readFileSafe, writeFileAtomic, ensurePrivateDir } from "../fs/safe-file.js";
import { createFileKeystore, type FileKeystore, type FileStoreInfo } from "./file-store.js";
import { createKeyringKeystore, type KeyringProbe } from "./keyring.js";
import type { Keystore, KeystoreKind } from "./types.js";

/** Why the active backend was chosen (DESIGN.md, keystore resolution). */
export type KeystoreReason = "forced" | "keychain-reachable" | "promoted" | "fallback";

/** The chosen keystore and the facts `doctor` and `whoami` report about the choice. */
export interface KeystoreResolution {
  readonly keystore: Keystore;
  readonly backend: KeystoreKind;
  readonly reason: KeystoreReason;
  /** True when secrets sit in the file store rather than an OS keychain. */
  readonly degraded: boolean;
  /** One plain sentence on what protects the secrets. */
  readonly explanation: string;
  /** How many file-store entries were moved into the keychain by this resolution. */
  readonly promoted: number;
  /** Why the keychain was not used, when it was not. */
  readonly keyringError?: LatchkeyError;
  /** A problem that did not stop resolution (e.g. a file store that could not be promoted yet). */
  readonly warning?: LatchkeyError;
  readonly fileStore: FileStoreInfo;
}

/** The parts resolution needs, narrowed so tests can pass fakes for the keychain. */
export interface ResolveDeps {
  readonly env: Context["env"];
  readonly paths: Context["paths"];
  readonly clock: Context["clock"];
  readonly fileStore: FileKeystore;
  readonly keyring: {
    /** See KeyringKeystore.probe: with `account`, a real read whose value comes back. */
    probe(account?: string): Promise<KeyringProbe>;
    create(): Keystore;
  };
}

/** Options of one resolution. */
export interface ResolveOptions {
  /**
   * The account the command reads first. The keychain probe then reads it for real, and the resolved keystore
   * answers that first get from the probe instead of a second round trip.
   */
  readonly prefetch?: string;
}

/** keystore.json as written (core's keystoreStateSchema reads only `backend`). */
interface KeystoreState {
  backend: "keyring";
  since: string;
  promoted?: number;
}

const MACHINE_KEY_SENTENCE =
  "The file store is encrypted with a random key file mixed with this machine's id: this binds it to this host, " +
  "but does not protect it from other processes running as your user.";
const PASSPHRASE_SENTENCE =
  "The file store is encrypted with a key derived from your passphrase (Argon2id); without the passphrase it cannot be read.";

function fileSentence(info: FileStoreInfo, env: Context["env"]): string {
  const passphrase =
    info.protection === "passphrase" || (info.protection === null && env.LATCHKEY_PASSPHRASE !== undefined);
  return passphrase ? PASSPHRASE_SENTENCE : MACHINE_KEY_SENTENCE;
}

/** Whether keystore.json says the secrets live in the keychain. */
async function keychainMarked(path: string): Promise<boolean> {
  const bytes = await readFileSafe(path);
  if (bytes === null) return false;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    parsed = undefined;
  }
  // A damaged marker (not JSON, or no JSON object) must not hide a broken keychain: it counts as "secrets are in
  // the keychain". An object naming another backend does not.
  return !isTable(parsed) || readKeystoreState(parsed).ok;
}

async function writeState(deps: ResolveDeps, state: KeystoreState): Promise<void> {
  await ensurePrivateDir(deps.paths.home);
  await writeFileAtomic(deps.paths.keystoreState, `${JSON.stringify(state, null, 2)}\n`);
}

/** Wraps the keychain so its first write records that secrets now live there (DESIGN.md, resolution 4). */
function rememberingKeyring(deps: ResolveDeps, keyring: Keystore, known: boolean): Keystore {
  let recorded = known;
  return {
    kind: keyring.kind,
    get: (account) => keyring.get(account),
    delete: (account) => keyring.delete(account),
    list: () => keyring.list(),
    set: async (account, value) => {
      await keyring.set(account, value);
      if (!recorded) {
        await writeState(deps, { backend: "keyring", since: new Date(deps.clock.now()).toISOString() });
        recorded = true;
      }
    },
  };
}

/** Answers the first get of the prefetched account from the probe; everything after goes to the keychain. */
function answeringFirstGet(
  keystore: Keystore,
  prefetched: { account: string; value: string | null },
): Keystore {
  let pending: typeof prefetched | null = prefetched;
  const forget = <T>(result: T): T => {
    pending = null;
    return result;
  };
  return {
    kind: keystore.kind,
    get: (account) => {
      if (pending !== null && account === pending.account) return Promise.resolve(forget(pending.value));
      return keystore.get(account);
    },
    set: (account, value) => keystore.set(account, value).then(forget),
    delete: (account) => keystore.delete(account).then(forget),
    list: () => keystore.list(),
  };
}

/** Moves every file-store entry into the keychain, verifies each, then deletes the file store. */
async function promote(deps: ResolveDeps, keyring: Keystore): Promise<number> {
  const entries = await deps.fileStore.entries();
  for (const [account, value] of entries) await keyring.set(account, value);
  for (const [account, value] of entries) {
    if ((await keyring.get(account)) !== value) {
      throw new LatchkeyError("LK_KEYRING_FAILED", {
        message: `The OS keychain did not return what was just stored under ${account}; the file store was kept.`,
      });
    }
  }
  // The marker is written before the file store goes: a crash in between leaves both, and the next run promotes
  // again (idempotent), rather than leaving secrets in neither.
  await writeState(deps, {
    backend: "keyring",
    since: new Date(deps.clock.now()).toISOString(),
    promoted: entries.size,
  });
  await deps.fileStore.destroy();
  return entries.size;
}

/** Chooses the keystore: forced by LATCHKEY_KEYSTORE, else the OS keychain when reachable, else the file store. */
export async function resolveKeystoreWith(
  deps: ResolveDeps,
  options: ResolveOptions = {},
): Promise<KeystoreResolution> {
  const forced = deps.env.LATCHKEY_KEYSTORE;
  if (forced !== undefined && forced !== "" && forced !== "keyring" && forced !== "file") {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: `LATCHKEY_KEYSTORE=${forced} is not a keystore backend.`,
      hint: "Use LATCHKEY_KEYSTORE=keyring or LATCHKEY_KEYSTORE=file, or unset it to choose automatically.",
    });
  }
  const fileInfo = await deps.fileStore.describe();
  if (forced === "file") {
    return {
      keystore: deps.fileStore,
      backend: "file",
      reason: "forced",
      degraded: true,
      explanation: fileSentence(fileInfo, deps.env),
      promoted: 0,
      fileStore: fileInfo,
    };
  }

  const probe = await deps.keyring.probe(options.prefetch);
  if (!probe.reachable) {
    if (forced === "keyring") throw probe.error;
    if (await keychainMarked(deps.paths.keystoreState)) {
      throw new LatchkeyError("LK_KEYSTORE_PROMOTED_UNAVAILABLE", {
        message: `Your credentials live in the OS keychain, and it cannot be used: ${probe.error.message}`,
        cause: probe.error,
      });
    }
    // Only an absent keychain means "use the file store". A locked or refusing one is there and holds, or will
    // hold, the user's secrets: falling back would split them across two stores without a word.
    if (probe.error.code !== "LK_KEYRING_UNREACHABLE") throw probe.error;
    return {
      keystore: deps.fileStore,
      backend: "file",
      reason: "fallback",
      degraded: true,
      explanation: `No OS keychain is reachable, so secrets are kept in the encrypted file store. ${fileSentence(fileInfo, deps.env)}`,
      promoted: 0,
      keyringError: probe.error,
      fileStore: fileInfo,
    };
  }

  const keyring = deps.keyring.create();
  let promoted = 0;
  let warning: LatchkeyError | undefined;
  if (fileInfo.exists) {
    try {
      promoted = await promote(deps, keyring);
    } catch (error) {
      if (!isLatchkeyError(error) || error.code.startsWith("LK_KEYRING")) throw error;
      warning = new LatchkeyError(error.code, {
        message: `The file store could not be moved into the OS keychain: ${error.message}`,
        hint: error.hint,
        cause: error,
      });
    }
  }
  const known = promoted > 0 || (await keychainMarked(deps.paths.keystoreState));
  const remembering = rememberingKeyring(deps, keyring, known);
  // A promotion may have just written the prefetched account, so its probed value counts only without one.
  const prefetched =
    options.prefetch !== undefined && promoted === 0 && probe.value !== undefined
      ? { account: options.prefetch, value: probe.value }
      : null;
  return {
    keystore: prefetched === null ? remembering : answeringFirstGet(remembering, prefetched),
    backend: "keyring",
    reason: forced === "keyring" ? "forced" : promoted > 0 ? "promoted" : "keychain-reachable",
    degraded: false,
    explanation: "Secrets are kept in the OS keychain (Secret Service / Keychain / Credential Manager).",
    promoted,
    ...(warning ? { warning } : {}),
    fileStore: promoted > 0 ? { exists: false, protection: null } : fileInfo,
  };
}

/** Resolves the keystore for a real process from its context. */
export function resolveKeystore(ctx: Context, options: ResolveOptions = {}): Promise<KeystoreResolution> {
  const timeoutMs = Number(ctx.env.LATCHKEY_KEYRING_TIMEOUT_MS ?? "") || undefined;
  // One keychain instance for the probe and the keystore: they share the module and the entries' connections.
  const keyring = createKeyringKeystore(timeoutMs === undefined ? {} : { timeoutMs });
  return resolveKeystoreWith(
    {
      env: ctx.env,
      paths: ctx.paths,
      clock: ctx.clock,
      fileStore: createFileKeystore({
        home: ctx.paths.home,
        store: ctx.paths.store,
        storeKey: ctx.paths.storeKey,
        passphrase: ctx.env.LATCHKEY_PASSPHRASE,
        machineIdPaths: ctx.platform.machineIdPaths,
        random: ctx.random,
      }),
      keyring: { probe: (account) => keyring.probe(account), create: () => keyring },
    },
    options,
  );
}

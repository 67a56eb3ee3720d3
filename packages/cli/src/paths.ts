import { join, resolve } from "node:path";

/** Where Latchkey keeps its client-side state (DESIGN.md, "Client-side state"). */
export interface LatchkeyPaths {
  /** `$LATCHKEY_HOME`, default `~/.latchkey`. */
  readonly home: string;
  readonly config: string;
  readonly vaults: string;
  /** The encrypted file store, only used where no OS keychain is reachable. */
  readonly store: string;
  /** The random key the file store uses when no passphrase is given. */
  readonly storeKey: string;
  /** Records that secrets live in the OS keychain, so a broken keychain later is an error, not a silent fallback. */
  readonly keystoreState: string;
  /** The registries logged in to, by nerf dart, with the URL given at login (no secrets: a nerf dart keeps no scheme). */
  readonly registries: string;
}

/**
 * The user's home directory. On POSIX os.homedir() answers $HOME whenever it is set, so that is read directly:
 * node:os is not loaded then, which spares every start ~0.4 ms (bench scenarios 2, 4, 7 and 8).
 */
export function userHome(env: Readonly<Record<string, string | undefined>> = process.env): string {
  if (process.platform !== "win32" && env.HOME) return env.HOME;
  return process.getBuiltinModule("node:os").homedir();
}

/** Resolves the state paths from the environment. */
export function resolvePaths(
  env: Readonly<Record<string, string | undefined>>,
  home = userHome(env),
): LatchkeyPaths {
  const root = env.LATCHKEY_HOME ? resolve(env.LATCHKEY_HOME) : join(home, ".latchkey");
  return {
    home: root,
    config: join(root, "config.toml"),
    vaults: join(root, "vaults"),
    store: join(root, "store.enc"),
    storeKey: join(root, "store.key"),
    keystoreState: join(root, "keystore.json"),
    registries: join(root, "registries.json"),
  };
}

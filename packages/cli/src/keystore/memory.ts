import type { Keystore } from "./types.js";

/** An in-process keystore for unit tests; nothing survives the process. */
export function createMemoryKeystore(initial: Record<string, string> = {}): Keystore {
  const items = new Map(Object.entries(initial));
  return {
    kind: "memory",
    get: (account) => Promise.resolve(items.get(account) ?? null),
    set: (account, value) => {
      items.set(account, value);
      return Promise.resolve();
    },
    delete: (account) => Promise.resolve(items.delete(account)),
    list: () => Promise.resolve([...items.keys()].sort()),
  };
}

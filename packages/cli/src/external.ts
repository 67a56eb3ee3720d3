// Packages left outside the fast bundle (N-API addons, and code it keeps off its hot path) are loaded through
// this one function. The launcher runs that bundle as a classic script (launcher/code-cache.ts), where Node
// refuses import() without an experimental flag, so it passes in its own, as the script wrapper's parameter
// below. Everywhere else (the full CLI's bundle, tests) the plain imports are used, and the full CLI's bundle
// keeps the packages it can bundle.

/** The launcher's import(), a parameter of the fast bundle's script wrapper; undeclared anywhere else. */
declare const __latchkeyImportExternal: ((specifier: string) => Promise<unknown>) | undefined;

const imports = {
  "@napi-rs/keyring": () => import("@napi-rs/keyring"),
  "@node-rs/argon2": () => import("@node-rs/argon2"),
  "@clack/prompts": () => import("@clack/prompts"),
  "proper-lockfile": () => import("proper-lockfile"),
};

/** The packages the bundles may load at run time, and their types. */
export type ExternalModules = { [K in keyof typeof imports]: Awaited<ReturnType<(typeof imports)[K]>> };

/** `import(name)`, through the launcher's import() inside the fast bundle. */
export function importExternal<K extends keyof ExternalModules>(name: K): Promise<ExternalModules[K]> {
  return (
    typeof __latchkeyImportExternal === "function" ? __latchkeyImportExternal(name) : imports[name]()
  ) as Promise<ExternalModules[K]>;
}

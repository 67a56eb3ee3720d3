export { runCli } from "./cli.js";
export type { Context } from "./context.js";
export type { Keystore, KeystoreKind } from "./keystore/types.js";

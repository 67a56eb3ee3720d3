// The process entry of `docker-credential-latchkey` (bundled to dist/docker-credential.mjs). A bundle of its own:
// docker runs the helper before every pull and push, so it loads neither commander nor the rest of the CLI.
import { codeCacheDir } from "../launcher/code-cache.js";
import { createNodeContext, flushOutputs } from "../node-context.js";
import { runDockerCredentialHelper } from "./docker-credential.js";

// Node's compile cache for what loads from here on (the keychain module's JavaScript, proper-lockfile), in the
// launcher's private directory: never the shared OS temp dir, where another user could plant code.
const cacheDir = codeCacheDir(process.env);
if (cacheDir !== null) process.getBuiltinModule("node:module").enableCompileCache?.(`${cacheDir}/node`);

const exitCode = await runDockerCredentialHelper(process.argv.slice(2), createNodeContext());
// process.exit() would drop what a full pipe has not taken yet.
await flushOutputs();
if ((globalThis as Record<symbol, unknown>)[Symbol.for("latchkey.abandonedNativeCall")] === true) {
  // A keychain call abandoned at its time limit still blocks a thread-pool thread that Node would join at exit
  // (see keystore/keyring.ts and main.ts): replace the process image to leave with the exit code.
  if (process.execve) process.execve("/bin/sh", ["sh", "-c", `exit ${exitCode}`]);
  process.kill(process.pid, "SIGKILL");
}
process.exit(exitCode);

// `latchkey git-credential get|store|erase`: the helper side of git's credential protocol. git runs it with the
// description on stdin; the answer to `get` goes to stdout and nothing else ever does; diagnostics go to stderr and
// never carry a value from the input. Kept free of commander and prompts so the fast path can run it.
import type { Context } from "../context.js";
import {
  gitAccount,
  gitCredentialErase,
  gitCredentialGet,
  gitCredentialStore,
  parseGitCredentialInput,
} from "../helpers/git-credential.js";

/** The operations git sends (gitcredentials(7)); any other is ignored, as the protocol asks of helpers. */
export const GIT_CREDENTIAL_OPERATIONS = ["get", "store", "erase"] as const;

/**
 * Runs one helper operation against the active keystore and returns the exit code. Malformed input throws
 * LK_HELPER_INPUT_INVALID before the keystore is touched or anything is written to stdout. An operation git may
 * add in future (or `capability`) exits 0 without output, so git falls back to its other helpers.
 */
export async function gitCredential(ctx: Context, operation: string): Promise<number> {
  if (operation !== "get" && operation !== "store" && operation !== "erase") return 0;
  const request = parseGitCredentialInput(await ctx.stdin.readAll());
  // Every operation reads this account first, so the keychain probe can be that read.
  const { keystore } = await ctx.keystore(gitAccount(request));
  switch (operation) {
    case "get": {
      const answer = await gitCredentialGet(keystore, request, () => ctx.clock.now());
      // No answer is not an error: git goes on to its next helper or the prompt.
      if (answer !== null) ctx.stdout.write(answer);
      return 0;
    }
    case "store":
      await gitCredentialStore(keystore, request);
      return 0;
    case "erase":
      await gitCredentialErase(keystore, request);
      return 0;
  }
}

// `latchkey credential-provider --registry-uri URI [--format latchkey|npm-rfc]`: the provider side of the npm
// credential-provider protocol (npm/rfcs#850, draft accepted/0000-credential-provider-plugin.md; the consumer side,
// registry/provider-client.ts, reads both answer shapes). A package manager, or another Latchkey, runs it as a child
// and reads one JSON object from stdout; everything else goes to stderr.
import { LatchkeyError, isLatchkeyError } from "@latchkey/core";
import type { Context } from "../context.js";
import { printError } from "../output/output.js";
import { resolveRegistryToken } from "../registry/sources.js";
import type { ProviderAnswer } from "../registry/types.js";

/**
 * The exit codes of `credential-provider`, part of the protocol: a consumer tells "no credential" from "broken"
 * without parsing stderr. They are fixed here rather than taken from the catalogue, whose `1` covers many errors.
 */
export const CREDENTIAL_PROVIDER_EXIT = {
  /** The answer is on stdout. */
  credential: 0,
  /** No source has a token for this registry (LK_TOKEN_MISSING); stdout is empty. */
  noCredential: 1,
  /** The command line is wrong: a missing or malformed --registry-uri, an unknown flag. */
  usage: 2,
  /** Anything else (keystore unusable, configuration invalid, a provider of its own failed); stdout is empty. */
  error: 3,
} as const;

/** The answer shapes `--format` selects: Latchkey's own (the default) and the npm RFC draft's. */
export const PROVIDER_ANSWER_FORMATS = ["latchkey", "npm-rfc"] as const;
/** One of PROVIDER_ANSWER_FORMATS. */
export type ProviderAnswerFormat = (typeof PROVIDER_ANSWER_FORMATS)[number];

/**
 * The answer line. `latchkey`: `{"token":"…","expiresAt":"<ISO-8601>"|null}`. `npm-rfc`: the draft's
 * `{"_authToken":"…","expiresAt":<unix seconds>}`, without expiresAt when it is unknown (the draft has no null).
 */
export function formatProviderAnswer(answer: ProviderAnswer, format: ProviderAnswerFormat): string {
  if (format === "latchkey") return JSON.stringify({ token: answer.token, expiresAt: answer.expiresAt });
  const body: { _authToken: string; expiresAt?: number } = { _authToken: answer.token };
  // Rounded down: a consumer must never believe the token lives longer than it does.
  if (answer.expiresAt !== null) body.expiresAt = Math.floor(Date.parse(answer.expiresAt) / 1000);
  return JSON.stringify(body);
}

/** The exit code `credential-provider` uses for an error. */
export function credentialProviderExitCode(error: unknown): number {
  if (isLatchkeyError(error, "LK_TOKEN_MISSING")) return CREDENTIAL_PROVIDER_EXIT.noCredential;
  if (isLatchkeyError(error, "LK_USAGE") || isLatchkeyError(error, "LK_REGISTRY_INVALID")) {
    return CREDENTIAL_PROVIDER_EXIT.usage;
  }
  return CREDENTIAL_PROVIDER_EXIT.error;
}

/**
 * Prints the answer (formatProviderAnswer) and a newline for the registry, resolved like every Latchkey command
 * resolves tokens (input > environment > provider > host CLI > keystore). `expiresAt` is what the winning source
 * said (only a provider of Latchkey's own says anything); null means unknown.
 */
export async function credentialProvider(
  ctx: Context,
  registryUri: string,
  verbose: number,
  format: ProviderAnswerFormat = "latchkey",
): Promise<number> {
  try {
    const resolution = await resolveRegistryToken(ctx, registryUri);
    if (resolution.token === null) {
      throw new LatchkeyError("LK_TOKEN_MISSING", {
        message: `No token is available for ${resolution.nerfDart}.`,
        hint: `Run \`latchkey login --registry ${registryUri}\`; \`latchkey whoami --explain --registry ${registryUri}\` shows every source checked.`,
      });
    }
    ctx.stdout.write(
      `${formatProviderAnswer({ token: resolution.token, expiresAt: resolution.expiresAt }, format)}\n`,
    );
    return CREDENTIAL_PROVIDER_EXIT.credential;
  } catch (error) {
    printError(ctx, error, verbose);
    return credentialProviderExitCode(error);
  }
}

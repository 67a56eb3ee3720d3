/**
 * What a credential provider prints on stdout (docs/registries.md): one JSON object in either of two shapes,
 * Latchkey's own or the npm RFC draft's (npm/rfcs#850), both read as a {@link ProviderAnswer}. The draft's
 * basic-auth forms (`_auth`, `username` with `_password`) are not accepted: every hand-off Latchkey makes
 * passes a bearer token.
 */
import * as z from "zod/mini";
import { MAX_UNIX_SECONDS, isProviderToken, parseIsoDateTime } from "./rules.js";

function token(name: string) {
  const missing = `printed no ${name} (a non-empty string)`;
  return z.string({ error: missing }).check(
    z.minLength(1, { error: missing }),
    z.refine(isProviderToken, {
      error: `printed a ${name} that is too long or contains control characters`,
    }),
  );
}

/** Latchkey's shape: `{"token": "…", "expiresAt": "<ISO-8601 with a zone>" | null}`, both members required. */
export const latchkeyProviderAnswerSchema = z.strictObject({
  token: token("token"),
  expiresAt: z.nullable(
    z.string().check(
      z.refine((text) => parseIsoDateTime(text) !== null, {
        error: "printed an expiresAt that is neither null nor an ISO-8601 date-time with a time zone",
      }),
    ),
  ),
});

/** The npm RFC draft's bearer shape: `{"_authToken": "…", "expiresAt": <unix seconds>}`, expiresAt optional. */
export const npmProviderAnswerSchema = z.pipe(
  z.strictObject({
    _authToken: token("_authToken"),
    expiresAt: z.optional(
      z.nullable(
        z.number({ error: "printed an expiresAt that is not a unix time in seconds" }).check(
          z.gte(0, { error: "printed an expiresAt that is not a unix time in seconds" }),
          z.lt(MAX_UNIX_SECONDS, {
            error: "printed an expiresAt too large for unix seconds (milliseconds by mistake?)",
          }),
        ),
      ),
    ),
  }),
  z.transform((answer) => ({
    token: answer._authToken,
    expiresAt:
      answer.expiresAt === undefined || answer.expiresAt === null
        ? null
        : new Date(Math.floor(answer.expiresAt * 1000)).toISOString(),
  })),
);

/** A provider's answer in either shape, read as Latchkey's. */
export const providerAnswerSchema = z.union([latchkeyProviderAnswerSchema, npmProviderAnswerSchema]);

/** A credential provider's answer: the token and when it expires (ISO-8601), null for unknown or never. */
export type ProviderAnswer = z.output<typeof providerAnswerSchema>;

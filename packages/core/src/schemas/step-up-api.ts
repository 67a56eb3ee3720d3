/**
 * Step-up proofs (docs/pairing.md): a short-lived token that says "this session's user typed their password (and
 * TOTP code) just now, for this one action". Sensitive routes take one in {@link STEP_UP_HEADER}; the CLI mints
 * them only on a terminal. The bodies follow sync-api.ts's rules: strict objects, messages that never quote a
 * value.
 */
import * as z from "zod/mini";
import { body, text } from "./sync-api.js";

/** The request header that carries a step-up proof. */
export const STEP_UP_HEADER = "x-latchkey-step-up";

/** How long a proof is good for, from its minting. */
export const STEP_UP_TTL_SECONDS = 5 * 60;

/**
 * The actions a proof can be minted for: a proof's `aud` is exactly one of them, and a route accepts only its
 * own. A proof for pairing cannot remove an organisation member. The organisation's membership has one scope per
 * kind of change (adding someone, changing a role, removing someone, deleting the organisation), so a proof typed
 * for one can never be replayed as another.
 */
export const STEP_UP_SCOPES = [
  "vault:public-key:set",
  "vault:public-key:rotate",
  "vault:pair",
  "org:member:add",
  "org:member:role",
  "org:member:remove",
  "org:delete",
  "vault:ci:enable",
] as const;

/** One of {@link STEP_UP_SCOPES}. */
export type StepUpScope = (typeof STEP_UP_SCOPES)[number];

/** How an account re-authenticates: both factors when TOTP is enrolled (never the password alone then). */
export const STEP_UP_METHODS = ["password+totp", "password", "unavailable"] as const;

/** One of {@link STEP_UP_METHODS}. */
export type StepUpMethod = (typeof STEP_UP_METHODS)[number];

/** Longest password a step-up takes (the sign-in page's limit). */
export const MAX_STEP_UP_PASSWORD_LENGTH = 1024;

/** `GET /api/v1/step-up/method`: how the caller's account re-authenticates. */
export const stepUpMethodResponseSchema = body({
  method: z.enum(STEP_UP_METHODS, `"method" must be one of ${STEP_UP_METHODS.join(", ")}.`),
  /** For `unavailable`: why, in a sentence. */
  reason: z.optional(text("reason")),
  /** For `unavailable`: what the user can do about it. */
  hint: z.optional(text("hint")),
});
/** `GET /api/v1/step-up/method`: how the caller's account re-authenticates. */
export type StepUpMethodResponse = z.infer<typeof stepUpMethodResponseSchema>;

const scope = z.enum(STEP_UP_SCOPES, `"scope" must be one of ${STEP_UP_SCOPES.join(", ")}.`);

/** `POST /api/v1/step-up`: the factors, for one scope. */
export const stepUpRequestSchema = body({
  scope,
  password: z
    .string(`"password" must be a string of 1 to ${MAX_STEP_UP_PASSWORD_LENGTH} characters.`)
    .check(z.minLength(1), z.maxLength(MAX_STEP_UP_PASSWORD_LENGTH)),
  /** Required when the method is `password+totp`; refused when it is `password`. */
  totp: z.optional(z.string(`"totp" must be 6 digits.`).check(z.regex(/^[0-9]{6}$/))),
});
/** `POST /api/v1/step-up`: the factors, for one scope. */
export type StepUpRequest = z.infer<typeof stepUpRequestSchema>;

/** 200 answer of `POST /api/v1/step-up`. */
export const stepUpResponseSchema = body({
  /** A compact JWS (HS256): sub, sid, aud = scope, jti, iat, exp. Opaque to the client. */
  proof: z
    .string(`"proof" must be a compact JWS.`)
    .check(z.maxLength(2048), z.regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/)),
  scope,
  /** When the proof expires (ISO-8601). */
  expiresAt: text("expiresAt"),
});
/** 200 answer of `POST /api/v1/step-up`. */
export type StepUpResponse = z.infer<typeof stepUpResponseSchema>;

/**
 * `POST` here with the body of `POST /api/v1/step-up` and the server sets the proof as a cookie instead of
 * answering it: HttpOnly, SameSite=Strict, scoped to the routes that take it, for the browser dashboard, whose
 * page script then never holds a proof (docs/pairing.md "The browser's step-up cookie").
 */
export const STEP_UP_COOKIE_PATH = "/api/v1/step-up/cookie";

/**
 * The scopes a proof may be delivered as a cookie for: those whose routes live under the cookie's path
 * (`PAIRINGS_PATH`), where the browser sends it.
 */
export const STEP_UP_COOKIE_SCOPES = ["vault:pair"] as const satisfies readonly StepUpScope[];

/** 200 answer of `POST /api/v1/step-up/cookie`: the proof went into a Set-Cookie header, never the body. */
export const stepUpCookieResponseSchema = body({
  scope: z.enum(STEP_UP_COOKIE_SCOPES, `"scope" must be one of ${STEP_UP_COOKIE_SCOPES.join(", ")}.`),
  /** When the proof, and the cookie, expire (ISO-8601). */
  expiresAt: text("expiresAt"),
});
/** 200 answer of `POST /api/v1/step-up/cookie`. */
export type StepUpCookieResponse = z.infer<typeof stepUpCookieResponseSchema>;

// Forged and denied CI tokens through the real exchange route (POST /api/v1/ci/oidc, docs/ci.md "Exchange"), on
// both databases, with loopback issuers the app trusts (support/ci-issuer.ts: GitHub's and GitLab's documented claim
// sets) and an untrusted one playing the attacker. One table of named cases, grouped by what they tamper with: the
// signature's bytes, the algorithm, the key and where it is said to come from, iss, aud, the times, the jti, and
// every claim a policy reads (repository and its ids, sub, ref, environment, event; GitLab's project, namespace,
// fork and protected-ref claims), and tokens carried to another vault copy. Each group first exchanges the
// untampered token for the same copy (a broken fixture fails the group instead of letting every case "pass"), then
// sends each case, which must be refused with its status and code, answer no CI access token and no signature,
// add no vault.ci.exchange row and spend no jti (the exchange spends one only in the transaction that grants).
// The suite's last test asserts at least 200 cases and prints the matrix: category → refused / total.
import { execFileSync } from "node:child_process";
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  randomUUID,
  sign,
  X509Certificate,
  type KeyObject,
} from "node:crypto";
import {
  CI_PATH,
  checkSchema,
  ciExchangeResponseSchema,
  ORGS_PATH,
  sealEnvelope,
  STEP_UP_HEADER,
  syncBlobContext,
  toBase64,
  utf8Encode,
  wrapKeyForRecipient,
  type CiPolicy,
} from "@latchkey/core";
import { exportJWK, SignJWT, type JWK } from "jose";
import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { CiPolicyRule } from "../src/ci/claims.js";
import { CI_TOKEN_LEEWAY_SECONDS, CI_TOKEN_MAX_AGE_SECONDS } from "../src/ci/verify.js";
import type { OpenDatabase } from "../src/db/index.js";
import { describeEachDatabase } from "./databases.js";
import { call, makeOrg, newMember, shareBody, type Member } from "./org-support.js";
import {
  startCiIssuer,
  TEST_CI_AUDIENCE,
  TEST_JWKS_PATH,
  type CiIssuer,
  type MintOptions,
} from "./support/ci-issuer.js";
import { TEST_ESCROW_KEY } from "./support/identity.js";
import { stepUpProofFor } from "./support/step-up.js";
import {
  injectedSignature,
  newRequestId,
  newVaultKey,
  openMigrated,
  pushBody,
  sealBlob,
  startSyncServer,
  type Caller,
  type SyncServer,
} from "./sync-support.js";

const DOCUMENT = JSON.stringify({ production: { API_KEY: `lk-forged-${randomBytes(8).toString("hex")}` } });
const OTHER_AUDIENCE = "https://other-audience.example";

/** The vault copies cases are sent to. */
type CopyName =
  /** alice's personal copy: GitHub octo-org/octo-repo (74, 65), branches main and release/*, environment production. */
  | "github"
  /** Another vault of alice's with the same policy (a jti spent on one is spent for both). */
  | "github-twin"
  /** A vault whose policy names another repository, octo-org/other-repo (75). */
  | "github-other-repo"
  /** The github policy with another audience. */
  | "github-other-audience"
  /** GitLab acme/app (20, 72), branch main, protected refs only, no environments. */
  | "gitlab"
  /** An organisation's copy of the vault V: octo-org/org-repo (76, 65), production. */
  | "org"
  /** The personal copy of V by the organisation's owner: the github policy. */
  | "org-owner-personal"
  /** V under the slug of another organisation, which holds no copy of it. */
  | "org-empty"
  /** V under a slug no organisation has. */
  | "org-missing"
  /** A vault id the server does not know. */
  | "no-policy";

/** What the cases need when they mint. */
interface Fixtures {
  github: CiIssuer;
  gitlab: CiIssuer;
  /** Started but trusted by no configuration: the attacker's issuer and key host. */
  attacker: CiIssuer;
  /** An RSA key pair the attacker holds. */
  attackerKey: { privateKey: KeyObject; publicJwk: JWK };
  /** A self-signed certificate of the attacker's (x5c), with its private key. */
  attackerCert: { privateKey: KeyObject; der: string; sha1: string; sha256: string };
  /** The github issuer's published JWK of an algorithm, as its key set serves it. */
  published: { RS256: JWK; ES256: JWK };
  /** The current group's control token (already exchanged), for the replay cases. */
  control: string;
}

/** What a refused case must get. */
interface Refusal {
  status: number;
  code: string;
  /** What the message must say (the rule, the check). */
  says?: RegExp;
}

interface ForgedCase {
  name: string;
  /** The copy it is sent to; the group's by default. */
  to?: CopyName;
  token: (fx: Fixtures) => Promise<string>;
  refusal: Refusal;
}

interface Group {
  category: string;
  copy: CopyName;
  /** The untampered token for the group's copy; exchanged first, it must succeed. */
  control: (fx: Fixtures) => Promise<string>;
  /** More tokens that must be accepted (inside the leeway, ids as numbers…): positive controls, not counted. */
  accepted?: { name: string; to?: CopyName; token: (fx: Fixtures) => Promise<string> }[];
  cases: ForgedCase[];
}

const invalid = (says?: RegExp): Refusal => ({
  status: 401,
  code: "LK_CI_TOKEN_INVALID",
  ...(says === undefined ? {} : { says }),
});
const denied = (rule: CiPolicyRule, claim?: string): Refusal => ({
  status: 403,
  code: "LK_CI_POLICY_DENIED",
  says: new RegExp(`rule "${rule}" failed${claim === undefined ? "" : ` on claim ${claim} `}`),
});
const REPLAYED: Refusal = { status: 401, code: "LK_CI_TOKEN_REPLAYED", says: /already exchanged/ };
const NOT_ENABLED: Refusal = { status: 404, code: "LK_CI_NOT_ENABLED", says: /not enabled/ };
/** Not a JWT by the request schema's own pattern (three base64url parts): a 400 before any verification. */
const MALFORMED: Refusal = { status: 400, code: "LK_SERVER_ERROR" };
const ALGORITHM = invalid(/not signed with RS256 or ES256/);
// A flipped payload byte may leave no readable iss to pick the issuer by: refused as no signed JWT at all.
const SIGNATURE = invalid(/signature does not verify|not a signed JWT/);
// The token is verified with the trusted issuer its own iss names before the policy is read (no probing for CI):
// a token of another trusted issuer, or of none, is refused for its issuer rather than for its key.
const UNKNOWN_KEY = invalid(/unknown signing key|names no signing key|issuer is not/);

// ---- Tokens -----------------------------------------------------------------------------------------------------

const now = (): number => Math.floor(Date.now() / 1000);
const b64url = (data: Uint8Array | string): string => Buffer.from(data).toString("base64url");
const parts = (token: string): [string, string, string] => token.split(".") as [string, string, string];
const decoded = (segment: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(segment, "base64url").toString("utf8")) as Record<string, unknown>;

/** A GitHub Actions token of the github issuer for the github copy (push to main, environment production). */
const gh = (fx: Fixtures, claims: Record<string, unknown> = {}, options: MintOptions = {}): Promise<string> =>
  fx.github.mint({ environment: "production", ...claims }, options);
/** A GitLab CI token of the gitlab issuer for the gitlab copy (push to protected main of acme/app). */
const gl = (fx: Fixtures, claims: Record<string, unknown> = {}): Promise<string> =>
  fx.gitlab.mint(claims, { shape: "gitlab" });
/** GitLab's claims before 18.3: no job_project_* / job_namespace_*. */
const OLD_GITLAB = {
  job_project_id: undefined,
  job_project_path: undefined,
  job_namespace_id: undefined,
  job_namespace_path: undefined,
};

/** The claims of a fresh github token for the github copy, to sign some other way. */
async function ghPayload(
  fx: Fixtures,
  claims: Record<string, unknown> = {},
): Promise<Record<string, unknown>> {
  return { ...decoded(parts(await gh(fx))[1]), ...claims };
}

/** A compact JWS put together by hand (jose refuses to sign what these cases need). */
function compact(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  signer: ((input: string) => Uint8Array) | string,
): string {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  return `${input}.${typeof signer === "string" ? signer : b64url(signer(input))}`;
}

/** RS256 with a node:crypto private key. */
const rs256 =
  (key: KeyObject) =>
  (input: string): Uint8Array =>
    sign("sha256", Buffer.from(input), key);

/** `token` with bit `bit` of byte `index` of one part flipped, re-encoded canonically. */
function flipped(token: string, part: 0 | 1 | 2, index: number, bit: number): string {
  const all = parts(token);
  const bytes = Buffer.from(all[part], "base64url");
  const at = Math.min(index, bytes.length - 1);
  bytes[at] = bytes[at]! ^ (1 << bit);
  all[part] = bytes.toString("base64url");
  return all.join(".");
}

/** The byte offset of `text` in a part's decoded bytes. */
function offsetOf(token: string, part: 0 | 1, text: string): number {
  const at = Buffer.from(parts(token)[part], "base64url").indexOf(text);
  if (at < 0) throw new Error(`${text} is not in the token's part ${part}`);
  return at;
}

/** HS256 (or 384/512) "signed" with `secret`, the issuer's kid in the header: the classic algorithm confusion. */
async function hmacWith(
  fx: Fixtures,
  secret: Uint8Array | string,
  options: { alg?: "HS256" | "HS384" | "HS512"; kid?: string | null } = {},
): Promise<string> {
  const kid = options.kid === undefined ? fx.github.kid("RS256") : options.kid;
  return new SignJWT(await ghPayload(fx))
    .setProtectedHeader({ alg: options.alg ?? "HS256", typ: "JWT", ...(kid === null ? {} : { kid }) })
    .sign(typeof secret === "string" ? new TextEncoder().encode(secret) : secret);
}

const pem = (key: KeyObject, type: "spki" | "pkcs1"): string =>
  key.export({ type, format: "pem" }).toString();
const der = (key: KeyObject, type: "spki" | "pkcs1"): Uint8Array =>
  new Uint8Array(key.export({ type, format: "der" }));

// ---- The table --------------------------------------------------------------------------------------------------

const HEADER_FLIPS: [number, number][] = [
  [0, 0],
  [2, 5],
  [7, 1],
  [9, 3],
  [15, 6],
  [22, 2],
  [30, 4],
  [45, 0],
  [70, 7],
  [999, 1],
];
const PAYLOAD_FLIPS: [number, number][] = [
  [0, 1],
  [1, 6],
  [50, 0],
  [100, 3],
  [200, 5],
  [333, 2],
  [500, 4],
  [700, 1],
  [999_999, 0],
];
const SIGNATURE_FLIPS: [number, number][] = [
  [0, 7],
  [1, 0],
  [31, 3],
  [64, 6],
  [127, 1],
  [128, 4],
  [200, 2],
  [254, 5],
  [255, 0],
];

const signatureGroup: Group = {
  category: "signature bytes",
  copy: "github",
  control: (fx) => gh(fx),
  cases: [
    ...HEADER_FLIPS.map(([index, bit]): ForgedCase => ({
      name: `header byte ${index === 999 ? "last" : index} bit ${bit} flipped`,
      token: async (fx) => flipped(await gh(fx), 0, index, bit),
      refusal: invalid(),
    })),
    ...PAYLOAD_FLIPS.map(([index, bit]): ForgedCase => ({
      name: `payload byte ${index === 999_999 ? "last" : index} bit ${bit} flipped`,
      token: async (fx) => flipped(await gh(fx), 1, index, bit),
      refusal: SIGNATURE,
    })),
    ...(
      [
        ["repository", '"repository":"octo-org/octo-repo"', 20],
        ["repository_id", '"repository_id":"74"', 17],
        ["ref", '"ref":"refs/heads/main"', 18],
        ["environment", '"environment":"production"', 15],
        ["event_name", '"event_name":"push"', 14],
      ] as const
    ).map(([claim, text, shift]): ForgedCase => ({
      name: `payload bit flipped inside ${claim}`,
      token: async (fx) => {
        const token = await gh(fx);
        return flipped(token, 1, offsetOf(token, 1, text) + shift, 0);
      },
      refusal: SIGNATURE,
    })),
    ...SIGNATURE_FLIPS.map(([index, bit]): ForgedCase => ({
      name: `RS256 signature byte ${index} bit ${bit} flipped`,
      token: async (fx) => flipped(await gh(fx), 2, index, bit),
      refusal: SIGNATURE,
    })),
    ...[0, 31, 32, 63].map((index): ForgedCase => ({
      name: `ES256 signature byte ${index} flipped`,
      token: async (fx) => flipped(await gh(fx, {}, { alg: "ES256" }), 2, index, 2),
      refusal: SIGNATURE,
    })),
    {
      name: "another valid token's signature on this header and payload",
      token: async (fx) => {
        const [header, payload] = parts(await gh(fx));
        return `${header}.${payload}.${parts(await gh(fx))[2]}`;
      },
      refusal: SIGNATURE,
    },
    {
      name: "a token minted for refs/heads/dev with its payload rewritten to main, signature kept",
      token: async (fx) => {
        const [header, payload, signature] = parts(await gh(fx, { ref: "refs/heads/dev" }));
        const rewritten = { ...decoded(payload), ref: "refs/heads/main" };
        return `${header}.${b64url(JSON.stringify(rewritten))}.${signature}`;
      },
      refusal: SIGNATURE,
    },
    {
      name: "a token of octo-org/other-repo with its repository rewritten, signature kept",
      token: async (fx) => {
        const [header, payload, signature] = parts(await gh(fx, { repository: "octo-org/other-repo" }));
        const rewritten = { ...decoded(payload), repository: "octo-org/octo-repo" };
        return `${header}.${b64url(JSON.stringify(rewritten))}.${signature}`;
      },
      refusal: SIGNATURE,
    },
    {
      name: "the same payload re-serialized (whitespace), signature kept",
      token: async (fx) => {
        const [header, payload, signature] = parts(await gh(fx));
        return `${header}.${b64url(JSON.stringify(decoded(payload), null, 1))}.${signature}`;
      },
      refusal: SIGNATURE,
    },
    {
      name: "an ES256 token's header on an RS256 token's payload and signature",
      token: async (fx) => {
        const [, payload, signature] = parts(await gh(fx));
        return `${parts(await gh(fx, {}, { alg: "ES256" }))[0]}.${payload}.${signature}`;
      },
      refusal: SIGNATURE,
    },
    {
      name: "signature truncated by one byte",
      token: async (fx) => {
        const [header, payload, signature] = parts(await gh(fx));
        return `${header}.${payload}.${b64url(Buffer.from(signature, "base64url").subarray(1))}`;
      },
      refusal: SIGNATURE,
    },
    {
      name: "signature doubled",
      token: async (fx) => {
        const [header, payload, signature] = parts(await gh(fx));
        const bytes = Buffer.from(signature, "base64url");
        return `${header}.${payload}.${b64url(Buffer.concat([bytes, bytes]))}`;
      },
      refusal: SIGNATURE,
    },
    {
      name: "signature all zeros",
      token: async (fx) =>
        `${parts(await gh(fx))
          .slice(0, 2)
          .join(".")}.${b64url(new Uint8Array(256))}`,
      refusal: SIGNATURE,
    },
    {
      name: "signature removed (empty third part)",
      token: async (fx) =>
        `${parts(await gh(fx))
          .slice(0, 2)
          .join(".")}.`,
      refusal: MALFORMED,
    },
    {
      name: "signature segment padded with '='",
      token: async (fx) => `${await gh(fx)}=`,
      refusal: MALFORMED,
    },
    {
      name: "a fourth part appended",
      token: async (fx) => `${await gh(fx)}.${b64url("x")}`,
      refusal: MALFORMED,
    },
    {
      name: "payload only (unsigned JSON in base64url)",
      token: async (fx) => `${parts(await gh(fx))[1]}`,
      refusal: MALFORMED,
    },
  ],
};

const algorithmGroup: Group = {
  category: "alg none and others",
  copy: "github",
  control: (fx) => gh(fx),
  cases: [
    ...(["none", "None", "NONE", "nOnE"] as const).flatMap((alg): ForgedCase[] => [
      {
        name: `alg ${alg} with the original signature kept`,
        token: async (fx) => {
          const token = await gh(fx);
          return compact(
            { alg, typ: "JWT", kid: fx.github.kid() },
            decoded(parts(token)[1]),
            parts(token)[2],
          );
        },
        refusal: ALGORITHM,
      },
      {
        name: `alg ${alg} with no signature`,
        token: async (fx) => compact({ alg, typ: "JWT", kid: fx.github.kid() }, await ghPayload(fx), ""),
        refusal: MALFORMED,
      },
    ]),
    ...(
      [
        ["no alg at all", { typ: "JWT" }],
        ["alg empty", { alg: "" }],
        ["alg null", { alg: null }],
        ["alg RS256 with a trailing space", { alg: "RS256 " }],
        ["alg rs256 in lower case", { alg: "rs256" }],
        ["alg as an array", { alg: ["RS256"] }],
        ["alg PS256 (same RSA key type)", { alg: "PS256" }],
        ["alg RS512", { alg: "RS512" }],
        ["alg ES384", { alg: "ES384" }],
        ["alg EdDSA", { alg: "EdDSA" }],
        ["alg dir (JWE)", { alg: "dir", enc: "A256GCM" }],
      ] as const
    ).map(([name, header]): ForgedCase => ({
      name,
      token: async (fx) =>
        compact(
          { typ: "JWT", kid: fx.github.kid(), ...header },
          await ghPayload(fx),
          rs256(fx.attackerKey.privateKey),
        ),
      refusal: ALGORITHM,
    })),
  ],
};

const publicKeyGroup: Group = {
  category: "HS256 with the public key",
  copy: "github",
  control: (fx) => gh(fx),
  cases: [
    ...(
      [
        ["PEM (SPKI)", (jwk: JWK) => pem(createPublicKey({ key: jwk, format: "jwk" }), "spki")],
        [
          "PEM (SPKI) without the final newline",
          (jwk: JWK) => pem(createPublicKey({ key: jwk, format: "jwk" }), "spki").trimEnd(),
        ],
        [
          "PEM (SPKI) with CRLF line ends",
          (jwk: JWK) => pem(createPublicKey({ key: jwk, format: "jwk" }), "spki").replace(/\n/g, "\r\n"),
        ],
        [
          "PEM (PKCS#1 RSA PUBLIC KEY)",
          (jwk: JWK) => pem(createPublicKey({ key: jwk, format: "jwk" }), "pkcs1"),
        ],
        ["DER (SPKI) bytes", (jwk: JWK) => der(createPublicKey({ key: jwk, format: "jwk" }), "spki")],
        ["DER (PKCS#1) bytes", (jwk: JWK) => der(createPublicKey({ key: jwk, format: "jwk" }), "pkcs1")],
        [
          "base64 of the DER on one line",
          (jwk: JWK) =>
            Buffer.from(der(createPublicKey({ key: jwk, format: "jwk" }), "spki")).toString("base64"),
        ],
        ["the JWK as published (JSON)", (jwk: JWK) => JSON.stringify(jwk)],
        [
          "the JWK's RFC 7638 members {e,kty,n}",
          (jwk: JWK) => JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n }),
        ],
        ["the whole key set document", (jwk: JWK) => JSON.stringify({ keys: [jwk] })],
        ["the modulus n (base64url text)", (jwk: JWK) => jwk.n ?? ""],
        ["the modulus n (bytes)", (jwk: JWK) => new Uint8Array(Buffer.from(jwk.n ?? "", "base64url"))],
      ] as const
    ).map(([encoding, secret]): ForgedCase => ({
      name: `HS256 keyed with the issuer's RS256 public key: ${encoding}`,
      token: (fx) => hmacWith(fx, secret(fx.published.RS256)),
      refusal: ALGORITHM,
    })),
    ...(["HS384", "HS512"] as const).map((alg): ForgedCase => ({
      name: `${alg} keyed with the issuer's RS256 public key PEM`,
      token: (fx) =>
        hmacWith(fx, pem(createPublicKey({ key: fx.published.RS256, format: "jwk" }), "spki"), { alg }),
      refusal: ALGORITHM,
    })),
    {
      name: "HS256 keyed with the issuer's ES256 public key PEM, under its kid",
      token: (fx) =>
        hmacWith(fx, pem(createPublicKey({ key: fx.published.ES256, format: "jwk" }), "spki"), {
          kid: fx.github.kid("ES256"),
        }),
      refusal: ALGORITHM,
    },
    {
      name: "HS256 keyed with the issuer's ES256 JWK (JSON)",
      token: (fx) => hmacWith(fx, JSON.stringify(fx.published.ES256), { kid: fx.github.kid("ES256") }),
      refusal: ALGORITHM,
    },
    {
      name: "HS256 keyed with the issuer's ES256 point (04 || x || y)",
      token: (fx) =>
        hmacWith(
          fx,
          Buffer.concat([
            Buffer.from([4]),
            Buffer.from(fx.published.ES256.x ?? "", "base64url"),
            Buffer.from(fx.published.ES256.y ?? "", "base64url"),
          ]),
          { kid: fx.github.kid("ES256") },
        ),
      refusal: ALGORITHM,
    },
    {
      name: "HS256 keyed with the RS256 public key PEM, no kid",
      token: (fx) =>
        hmacWith(fx, pem(createPublicKey({ key: fx.published.RS256, format: "jwk" }), "spki"), { kid: null }),
      refusal: ALGORITHM,
    },
  ],
};

const kidGroup: Group = {
  category: "kid",
  copy: "github",
  control: (fx) => gh(fx),
  cases: [
    {
      name: "an unknown kid, signed with the issuer's key",
      token: (fx) => gh(fx, {}, { kid: randomBytes(16).toString("hex") }),
      refusal: UNKNOWN_KEY,
    },
    {
      name: "no kid",
      token: (fx) => gh(fx, {}, { header: { kid: undefined } }),
      refusal: invalid(/names no signing key/),
    },
    { name: "kid empty", token: (fx) => gh(fx, {}, { kid: "" }), refusal: invalid(/names no signing key/) },
    {
      name: "kid of 300 characters",
      token: (fx) => gh(fx, {}, { kid: "k".repeat(300) }),
      refusal: invalid(/names no signing key/),
    },
    {
      name: "kid a number",
      token: (fx) => gh(fx, {}, { header: { kid: 1 } }),
      refusal: invalid(/names no signing key/),
    },
    {
      name: "kid null",
      token: (fx) => gh(fx, {}, { header: { kid: null } }),
      refusal: invalid(/names no signing key/),
    },
    {
      name: "kid an array holding the issuer's kid",
      token: (fx) => gh(fx, {}, { header: { kid: [fx.github.kid()] } }),
      refusal: invalid(/names no signing key/),
    },
    {
      name: "kid with a path traversal",
      token: (fx) => gh(fx, {}, { kid: `../../${fx.github.kid()}` }),
      refusal: UNKNOWN_KEY,
    },
    {
      name: "kid with SQL in it",
      token: (fx) => gh(fx, {}, { kid: "' OR '1'='1" }),
      refusal: UNKNOWN_KEY,
    },
    {
      name: "kid of the issuer's key in upper case",
      token: (fx) => gh(fx, {}, { kid: fx.github.kid().toUpperCase() }),
      refusal: UNKNOWN_KEY,
    },
    {
      name: "an RS256 signature under the kid of the issuer's ES256 key",
      token: (fx) => gh(fx, {}, { alg: "RS256", kid: fx.github.kid("ES256") }),
      refusal: UNKNOWN_KEY,
    },
    {
      name: "GitLab's kid and key, iss claiming GitHub",
      token: (fx) => fx.gitlab.mint({ iss: fx.github.url, environment: "production" }),
      refusal: UNKNOWN_KEY,
    },
    {
      name: "the issuer's kid, signed with the attacker's key",
      token: async (fx) =>
        compact(
          { alg: "RS256", typ: "JWT", kid: fx.github.kid() },
          await ghPayload(fx),
          rs256(fx.attackerKey.privateKey),
        ),
      refusal: SIGNATURE,
    },
  ],
};

const embeddedKeyGroup: Group = {
  category: "jwk/jku/x5u/x5c",
  copy: "github",
  control: (fx) => gh(fx),
  cases: [
    {
      name: "jwk header: the attacker's key under its own kid",
      token: async (fx) =>
        compact(
          { alg: "RS256", kid: "attacker", jwk: fx.attackerKey.publicJwk },
          await ghPayload(fx),
          rs256(fx.attackerKey.privateKey),
        ),
      refusal: UNKNOWN_KEY,
    },
    {
      name: "jwk header: the attacker's key relabelled with the issuer's kid",
      token: async (fx) =>
        compact(
          { alg: "RS256", kid: fx.github.kid(), jwk: { ...fx.attackerKey.publicJwk, kid: fx.github.kid() } },
          await ghPayload(fx),
          rs256(fx.attackerKey.privateKey),
        ),
      refusal: SIGNATURE,
    },
    {
      name: "jwk header with no kid in the header",
      token: async (fx) =>
        compact(
          { alg: "RS256", jwk: fx.attackerKey.publicJwk },
          await ghPayload(fx),
          rs256(fx.attackerKey.privateKey),
        ),
      refusal: UNKNOWN_KEY,
    },
    {
      name: "jku: the attacker issuer's key set, its kid and key",
      token: (fx) =>
        fx.attacker.mint(
          { iss: fx.github.url, environment: "production" },
          { header: { jku: `${fx.attacker.url}${TEST_JWKS_PATH}` } },
        ),
      refusal: UNKNOWN_KEY,
    },
    {
      name: "jku: the attacker's key set, under the issuer's kid",
      token: (fx) =>
        fx.attacker.mint(
          { iss: fx.github.url, environment: "production" },
          { kid: fx.github.kid(), header: { jku: `${fx.attacker.url}${TEST_JWKS_PATH}` } },
        ),
      refusal: SIGNATURE,
    },
    {
      name: "jku: the issuer's own key set URL, the attacker's key and kid",
      token: (fx) =>
        fx.attacker.mint(
          { iss: fx.github.url, environment: "production" },
          { header: { jku: `${fx.github.url}${TEST_JWKS_PATH}` } },
        ),
      refusal: UNKNOWN_KEY,
    },
    {
      name: "x5u: the attacker's URL, its kid and key",
      token: (fx) =>
        fx.attacker.mint(
          { iss: fx.github.url, environment: "production" },
          { header: { x5u: `${fx.attacker.url}/cert.pem` } },
        ),
      refusal: UNKNOWN_KEY,
    },
    {
      name: "x5c: the attacker's self-signed certificate, no kid",
      token: async (fx) =>
        compact(
          { alg: "RS256", x5c: [fx.attackerCert.der] },
          await ghPayload(fx),
          rs256(fx.attackerCert.privateKey),
        ),
      refusal: invalid(/names no signing key/),
    },
    {
      name: "x5c: the attacker's certificate, under the issuer's kid",
      token: async (fx) =>
        compact(
          { alg: "RS256", kid: fx.github.kid(), x5c: [fx.attackerCert.der] },
          await ghPayload(fx),
          rs256(fx.attackerCert.privateKey),
        ),
      refusal: SIGNATURE,
    },
    {
      name: "x5c with x5t and x5t#S256 of the attacker's certificate, its thumbprint as kid",
      token: async (fx) =>
        compact(
          {
            alg: "RS256",
            kid: fx.attackerCert.sha1,
            x5c: [fx.attackerCert.der],
            x5t: fx.attackerCert.sha1,
            "x5t#S256": fx.attackerCert.sha256,
          },
          await ghPayload(fx),
          rs256(fx.attackerCert.privateKey),
        ),
      refusal: UNKNOWN_KEY,
    },
    {
      name: "jwk, jku, x5u and x5c all pointing at the attacker",
      token: async (fx) =>
        compact(
          {
            alg: "RS256",
            kid: "attacker",
            jwk: fx.attackerKey.publicJwk,
            jku: `${fx.attacker.url}${TEST_JWKS_PATH}`,
            x5u: `${fx.attacker.url}/cert.pem`,
            x5c: [fx.attackerCert.der],
          },
          await ghPayload(fx),
          rs256(fx.attackerKey.privateKey),
        ),
      refusal: UNKNOWN_KEY,
    },
  ],
};

const issuerGroup: Group = {
  category: "iss",
  copy: "github",
  control: (fx) => gh(fx),
  cases: [
    { name: "iss absent", token: (fx) => gh(fx, { iss: undefined }), refusal: invalid(/issuer is not one/) },
    {
      name: "iss of the other trusted issuer (GitLab), GitHub's key",
      token: (fx) => gh(fx, { iss: fx.gitlab.url }),
      refusal: UNKNOWN_KEY,
    },
    {
      name: "iss with a trailing slash",
      token: (fx) => gh(fx, { iss: `${fx.github.url}/` }),
      refusal: invalid(/issuer is not/),
    },
    {
      name: "iss with the scheme in upper case",
      token: (fx) => gh(fx, { iss: fx.github.url.replace("http://", "HTTP://") }),
      refusal: invalid(/issuer is not/),
    },
    {
      name: "iss GitHub's real issuer",
      token: (fx) => gh(fx, { iss: "https://token.actions.githubusercontent.com" }),
      refusal: invalid(/issuer is not/),
    },
    {
      name: "iss the attacker's issuer, GitHub's key",
      token: (fx) => gh(fx, { iss: fx.attacker.url }),
      refusal: invalid(/issuer is not/),
    },
    {
      name: "iss with a path appended",
      token: (fx) => gh(fx, { iss: `${fx.github.url}/evil` }),
      refusal: invalid(/issuer is not/),
    },
    {
      name: "iss with a trailing space",
      token: (fx) => gh(fx, { iss: `${fx.github.url} ` }),
      refusal: invalid(/issuer is not/),
    },
    {
      name: "iss with a full-width digit in the host",
      token: (fx) => gh(fx, { iss: fx.github.url.replace("127.0.0.1", "127.0.0.１") }),
      refusal: invalid(/issuer is not/),
    },
    {
      name: "iss as an array holding the issuer",
      token: (fx) => gh(fx, { iss: [fx.github.url] }),
      refusal: invalid(),
    },
    { name: "iss a number", token: (fx) => gh(fx, { iss: 1 }), refusal: invalid() },
    {
      name: "the attacker's token with its own iss",
      token: (fx) => fx.attacker.mint({ environment: "production" }),
      refusal: UNKNOWN_KEY,
    },
    {
      name: "the attacker's token claiming GitHub's iss",
      token: (fx) => fx.attacker.mint({ iss: fx.github.url, environment: "production" }),
      refusal: UNKNOWN_KEY,
    },
  ],
};

const audienceGroup: Group = {
  category: "aud",
  copy: "github",
  control: (fx) => gh(fx),
  accepted: [
    {
      name: "aud an array holding the audience",
      token: (fx) => gh(fx, { aud: ["https://other.example", TEST_CI_AUDIENCE] }),
    },
  ],
  cases: [
    { name: "aud absent", token: (fx) => gh(fx, { aud: undefined }), refusal: invalid(/audience is not/) },
    ...(
      [
        ["another service", "https://evil.example"],
        ["in upper case", TEST_CI_AUDIENCE.toUpperCase()],
        ["with a trailing slash", `${TEST_CI_AUDIENCE}/`],
        ["with a trailing space", `${TEST_CI_AUDIENCE} `],
        ["http instead of https", TEST_CI_AUDIENCE.replace("https:", "http:")],
        ["with the default port spelled out", `${TEST_CI_AUDIENCE}:443`],
        ["GitHub's default (the owner's URL)", "https://github.com/octo-org"],
        ["the CI access token's audience", "latchkey:ci-pull"],
        ["an empty array", []],
        ["an array without it", ["https://a.example", "https://b.example"]],
        ["an empty string", ""],
      ] as const
    ).map(([name, aud]): ForgedCase => ({
      name: `aud ${name}`,
      token: (fx) => gh(fx, { aud }),
      refusal: invalid(/audience is not/),
    })),
    {
      name: "aud the issuer's URL",
      token: (fx) => gh(fx, { aud: fx.github.url }),
      refusal: invalid(/audience is not/),
    },
    {
      name: "aud nested in an array",
      token: (fx) => gh(fx, { aud: [[TEST_CI_AUDIENCE]] }),
      refusal: invalid(),
    },
    { name: "aud a number", token: (fx) => gh(fx, { aud: 1 }), refusal: invalid() },
  ],
};

const OLDEST = CI_TOKEN_MAX_AGE_SECONDS + CI_TOKEN_LEEWAY_SECONDS;

const timesGroup: Group = {
  category: "exp/nbf/iat",
  copy: "github",
  control: (fx) => gh(fx),
  accepted: [
    { name: "nbf 30 s ahead (inside the leeway)", token: (fx) => gh(fx, { nbf: now() + 30 }) },
    { name: "iat 30 s ahead (inside the leeway)", token: (fx) => gh(fx, { iat: now() + 30, nbf: now() }) },
    {
      name: "iat 15 min + 30 s old (inside the leeway), exp ahead",
      token: (fx) => gh(fx, { iat: now() - OLDEST + 30, nbf: now() - OLDEST + 30, exp: now() + 300 }),
    },
    {
      name: "exp an hour ahead (the CI token is capped anyway)",
      token: (fx) => gh(fx, { exp: now() + 3600 }),
    },
  ],
  cases: [
    {
      name: "expired 2 min ago (beyond the leeway)",
      token: (fx) => gh(fx, { iat: now() - 420, nbf: now() - 420, exp: now() - 120 }),
      refusal: invalid(/expired/),
    },
    {
      name: "expired an hour ago",
      token: (fx) => gh(fx, { iat: now() - 600, nbf: now() - 600, exp: now() - 3600 }),
      refusal: invalid(/expired/),
    },
    {
      name: "expired 30 s ago (inside the leeway: verified, but the exchange would answer a dead token)",
      token: (fx) => gh(fx, { iat: now() - 330, nbf: now() - 330, exp: now() - 30 }),
      refusal: invalid(/expires now/),
    },
    {
      name: "exp exactly now",
      token: (fx) => gh(fx, { iat: now() - 300, nbf: now() - 300, exp: now() }),
      refusal: invalid(/expires now/),
    },
    { name: "exp absent", token: (fx) => gh(fx, { exp: undefined }), refusal: invalid(/no exp claim/) },
    {
      name: "exp a string",
      token: (fx) => gh(fx, { exp: String(now() + 300) }),
      refusal: invalid(/exp claim/),
    },
    {
      name: "nbf 2 min ahead (beyond the leeway)",
      token: (fx) => gh(fx, { nbf: now() + 120 }),
      refusal: invalid(/not valid yet/),
    },
    {
      name: "nbf an hour ahead",
      token: (fx) => gh(fx, { nbf: now() + 3600, exp: now() + 3900 }),
      refusal: invalid(/not valid yet/),
    },
    { name: "nbf a string", token: (fx) => gh(fx, { nbf: "now" }), refusal: invalid(/nbf claim/) },
    {
      name: "iat 2 min ahead (beyond the leeway)",
      token: (fx) => gh(fx, { iat: now() + 120, nbf: now() }),
      refusal: invalid(/in the future/),
    },
    { name: "iat absent", token: (fx) => gh(fx, { iat: undefined }), refusal: invalid(/no iat claim/) },
    { name: "iat a string", token: (fx) => gh(fx, { iat: String(now()) }), refusal: invalid(/iat claim/) },
    {
      name: "too old: iat 15 min + 90 s ago (beyond the leeway), exp ahead",
      token: (fx) => gh(fx, { iat: now() - OLDEST - 30, nbf: now() - OLDEST - 30, exp: now() + 3600 }),
      refusal: invalid(/issued more than 15 minutes ago/),
    },
    {
      name: "too old: iat a day ago, exp ahead",
      token: (fx) => gh(fx, { iat: now() - 86_400, nbf: now() - 86_400, exp: now() + 300 }),
      refusal: invalid(/issued more than 15 minutes ago/),
    },
    {
      name: "too old: iat 0",
      token: (fx) => gh(fx, { iat: 0, nbf: 0, exp: now() + 300 }),
      refusal: invalid(/issued more than 15 minutes ago/),
    },
  ],
};

/** The control's jti, in a new token with `claims`. */
const sameJti = (fx: Fixtures, claims: Record<string, unknown> = {}): Promise<string> =>
  gh(fx, { jti: decoded(parts(fx.control)[1]).jti, ...claims });

const jtiGroup: Group = {
  category: "jti and replay",
  copy: "github",
  control: (fx) => gh(fx),
  cases: [
    { name: "jti absent", token: (fx) => gh(fx, { jti: undefined }), refusal: invalid(/no jti/) },
    { name: "jti empty", token: (fx) => gh(fx, { jti: "" }), refusal: invalid(/jti/) },
    {
      name: "jti of 257 characters",
      token: (fx) => gh(fx, { jti: "j".repeat(257) }),
      refusal: invalid(/jti/),
    },
    { name: "jti a number", token: (fx) => gh(fx, { jti: 12345 }), refusal: invalid(/jti/) },
    { name: "jti an array", token: (fx) => gh(fx, { jti: ["a"] }), refusal: invalid(/jti/) },
    { name: "jti null", token: (fx) => gh(fx, { jti: null }), refusal: invalid(/jti/) },
    {
      name: "the control token replayed as it was",
      token: (fx) => Promise.resolve(fx.control),
      refusal: REPLAYED,
    },
    {
      name: "the control token replayed to another vault with the same policy",
      to: "github-twin",
      token: (fx) => Promise.resolve(fx.control),
      refusal: REPLAYED,
    },
    { name: "a new token reusing the control's jti", token: (fx) => sameJti(fx), refusal: REPLAYED },
    {
      name: "the control's jti on another branch the policy allows",
      token: (fx) => sameJti(fx, { ref: "refs/heads/release/1.0" }),
      refusal: REPLAYED,
    },
    {
      name: "the control's jti with a later exp",
      token: (fx) => sameJti(fx, { exp: now() + 600 }),
      refusal: REPLAYED,
    },
    {
      name: "the control's jti signed with ES256",
      token: (fx) => gh(fx, { jti: decoded(parts(fx.control)[1]).jti }, { alg: "ES256" }),
      refusal: REPLAYED,
    },
  ],
};

const repositoryGroup: Group = {
  category: "repository",
  copy: "github",
  control: (fx) => gh(fx),
  cases: (
    [
      ["a longer name", "octo-org/octo-repo-evil"],
      ["a trailing slash", "octo-org/octo-repo/"],
      ["a leading slash", "/octo-org/octo-repo"],
      ["a doubled slash", "octo-org//octo-repo"],
      ["the owner capitalised", "Octo-org/octo-repo"],
      ["the owner in upper case", "OCTO-ORG/octo-repo"],
      ["the repo capitalised", "octo-org/Octo-repo"],
      ["the repo in upper case", "octo-org/OCTO-REPO"],
      ["both in upper case", "OCTO-ORG/OCTO-REPO"],
      ["a trailing space", "octo-org/octo-repo "],
      ["a leading space", " octo-org/octo-repo"],
      ["a trailing tab", "octo-org/octo-repo\t"],
      ["a trailing newline", "octo-org/octo-repo\n"],
      ["a trailing NUL", "octo-org/octo-repo\u0000"],
      ["a zero-width space inside", "octo-org/octo\u200b-repo"],
      ["a Cyrillic о in the repo", "octo-org/octo-rep\u043e"],
      ["a Greek ο in the owner", "\u03bfcto-org/octo-repo"],
      ["a full-width solidus", "octo-org\uff0focto-repo"],
      ["a division slash", "octo-org\u2215octo-repo"],
      ["a Unicode hyphen", "octo\u2010org/octo-repo"],
      ["a combining accent", "octo-org/octo-repo\u0301"],
      ["':' injection of a ref", "octo-org/octo-repo:ref:refs/heads/main"],
      ["'%3A' injection of a ref", "octo-org/octo-repo%3Aref%3Arefs%2Fheads%2Fmain"],
      ["the slash percent-encoded", "octo-org%2Focto-repo"],
      ["a .git suffix", "octo-org/octo-repo.git"],
      ["a host prefix", "github.com/octo-org/octo-repo"],
      ["another owner", "evil-org/octo-repo"],
      ["another repo of the owner", "octo-org/evil"],
      ["the owner alone", "octo-org"],
      ["absent", undefined],
      ["null", null],
      ["an array holding the name", ["octo-org/octo-repo"]],
      ["a number", 1],
    ] as const
  ).map(([name, repository]): ForgedCase => ({
    name: `repository with ${name}`,
    token: (fx) => gh(fx, { repository }),
    refusal: denied("repository", "repository"),
  })),
};

const idsGroup: Group = {
  category: "repository_id / repository_owner_id",
  copy: "github",
  control: (fx) => gh(fx),
  accepted: [
    { name: "repository_id as the number 74", token: (fx) => gh(fx, { repository_id: 74 }) },
    { name: "repository_owner_id as the number 65", token: (fx) => gh(fx, { repository_owner_id: 65 }) },
  ],
  cases: [
    ...(
      [
        ["another (a re-created repository)", "75"],
        ["with a leading zero", "074"],
        ["with a leading space", " 74"],
        ["with a trailing space", "74 "],
        ["with a plus sign", "+74"],
        ["as 74.0", "74.0"],
        ["in exponent form", "7.4e1"],
        ["in hex", "0x4a"],
        ["in full-width digits", "\uff17\uff14"],
        ["with a trailing NUL", "74\u0000"],
        ["empty", ""],
        ["the owner's id (swapped)", "65"],
        ["a negative number", -74],
        ["a fraction", 74.5],
        ["beyond a safe integer", 2 ** 53 + 74],
        ["true", true],
        ["an array", ["74"]],
        ["null", null],
        ["absent", undefined],
      ] as const
    ).map(([name, id]): ForgedCase => ({
      name: `repository_id ${name}`,
      token: (fx) => gh(fx, { repository_id: id }),
      refusal: denied("repository-id", "repository_id"),
    })),
    ...(
      [
        ["another (the owner account re-created)", "66"],
        ["with a leading zero", "065"],
        ["with a leading space", " 65"],
        ["the repository's id (swapped)", "74"],
        ["a fraction", 65.5],
        ["null", null],
        ["absent", undefined],
      ] as const
    ).map(([name, id]): ForgedCase => ({
      name: `repository_owner_id ${name}`,
      token: (fx) => gh(fx, { repository_owner_id: id }),
      refusal: denied("owner-id", "repository_owner_id"),
    })),
    {
      name: "repository renamed onto the policy's name (another repository's ids)",
      token: (fx) => gh(fx, { repository_id: "9001", repository_owner_id: "9002" }),
      refusal: denied("repository-id"),
    },
    {
      name: "ids swapped",
      token: (fx) => gh(fx, { repository_id: "65", repository_owner_id: "74" }),
      refusal: denied("repository-id"),
    },
  ],
};

const subGroup: Group = {
  category: "sub",
  copy: "github",
  control: (fx) => gh(fx),
  accepted: [
    { name: "sub absent, every other claim right", token: (fx) => gh(fx, { sub: undefined }) },
    {
      name: "sub naming another repository, every other claim right",
      token: (fx) => gh(fx, { sub: "repo:evil-org/evil-repo:ref:refs/heads/evil" }),
    },
  ],
  cases: [
    {
      name: "sub names the policy's repository, repository claims another",
      token: (fx) =>
        gh(fx, {
          sub: "repo:octo-org/octo-repo:ref:refs/heads/main",
          repository: "evil-org/evil-repo",
          repository_id: "999",
          repository_owner_id: "998",
        }),
      refusal: denied("repository", "repository"),
    },
    {
      name: "sub in GitHub's immutable form with the policy's ids, repository claims another",
      token: (fx) =>
        gh(fx, {
          sub: "repo:octo-org@65/octo-repo@74:ref:refs/heads/main",
          repository: "evil-org/evil-repo",
          repository_id: "999",
          repository_owner_id: "998",
        }),
      refusal: denied("repository", "repository"),
    },
    {
      name: "sub names the repository, repository absent",
      token: (fx) => gh(fx, { sub: "repo:octo-org/octo-repo:ref:refs/heads/main", repository: undefined }),
      refusal: denied("repository", "repository"),
    },
    {
      name: "sub's immutable ids right, repository_id another",
      token: (fx) =>
        gh(fx, { sub: "repo:octo-org@65/octo-repo@74:ref:refs/heads/main", repository_id: "99" }),
      refusal: denied("repository-id", "repository_id"),
    },
    {
      name: "sub names main, ref is dev",
      token: (fx) => gh(fx, { sub: "repo:octo-org/octo-repo:ref:refs/heads/main", ref: "refs/heads/dev" }),
      refusal: denied("branch", "ref"),
    },
    {
      name: "sub names production, environment is staging",
      token: (fx) =>
        gh(fx, { sub: "repo:octo-org/octo-repo:environment:production", environment: "staging" }),
      refusal: denied("environment", "environment"),
    },
    {
      name: "sub of a push, event is pull_request_target",
      token: (fx) =>
        gh(fx, { sub: "repo:octo-org/octo-repo:ref:refs/heads/main", event_name: "pull_request_target" }),
      refusal: denied("fork", "event_name"),
    },
    {
      name: "GitLab: sub names acme/app, the project paths another",
      to: "gitlab",
      token: (fx) =>
        gl(fx, {
          sub: "project_path:acme/app:ref_type:branch:ref:main",
          project_path: "mallory/app",
          job_project_path: "mallory/app",
        }),
      refusal: denied("repository", "job_project_path"),
    },
  ],
};

const branchGroup: Group = {
  category: "ref / branch",
  copy: "github",
  control: (fx) => gh(fx),
  accepted: [
    { name: "refs/heads/release/1.2 (release/*)", token: (fx) => gh(fx, { ref: "refs/heads/release/1.2" }) },
  ],
  cases: [
    ...(
      [
        "refs/heads/main-evil",
        "refs/heads/mainx",
        "refs/heads/xmain",
        "refs/heads/main/evil",
        "refs/heads/Main",
        "refs/heads/MAIN",
        "refs/heads/main/../dev",
        "refs/heads/../heads/main",
        "refs/heads//main",
        "refs/heads/main/",
        "refs/heads/ main",
        "refs/heads/main ",
        "refs/heads/main\n",
        "refs/heads/main\u0000",
        "refs/heads/m\u0430in",
        "refs/heads/main\u200b",
        "refs/heads/release/1.2/hotfix",
        "refs/heads/Release/1.2",
        "refs/heads/release",
        "refs/heads/releases/1.2",
        "refs/heads/dev",
      ] as const
    ).map((ref): ForgedCase => ({
      name: `ref ${JSON.stringify(ref)}`,
      token: (fx) => gh(fx, { ref }),
      refusal: denied("branch", "ref"),
    })),
    ...(
      [
        ["refs/tags/main (ref_type tag)", { ref: "refs/tags/main", ref_type: "tag" }],
        ["refs/tags/main with ref_type branch", { ref: "refs/tags/main" }],
        ["refs/pull/1/merge", { ref: "refs/pull/1/merge" }],
        ["refs/pull/1/head", { ref: "refs/pull/1/head" }],
        ["bare main", { ref: "main" }],
        ["heads/main", { ref: "heads/main" }],
        ["refs/remotes/origin/main", { ref: "refs/remotes/origin/main" }],
        ["REFS/HEADS/main", { ref: "REFS/HEADS/main" }],
        ["refs/heads/ (no branch)", { ref: "refs/heads/" }],
        ["ref absent", { ref: undefined }],
        ["ref null", { ref: null }],
        ["ref an array", { ref: ["refs/heads/main"] }],
      ] as const
    ).map(([name, claims]): ForgedCase => ({
      name,
      token: (fx) => gh(fx, claims),
      refusal: denied("ref", "ref"),
    })),
    {
      name: "refs/heads/main with ref_type tag",
      token: (fx) => gh(fx, { ref_type: "tag" }),
      refusal: denied("ref", "ref_type"),
    },
    {
      name: "refs/heads/main with ref_type Branch",
      token: (fx) => gh(fx, { ref_type: "Branch" }),
      refusal: denied("ref", "ref_type"),
    },
  ],
};

const environmentGroup: Group = {
  category: "environment",
  copy: "github",
  control: (fx) => gh(fx),
  cases: (
    [
      ["absent", undefined],
      ["staging", "staging"],
      ["Production", "Production"],
      ["PRODUCTION", "PRODUCTION"],
      ["with a trailing space", "production "],
      ["with a leading space", " production"],
      ["with a trailing newline", "production\n"],
      ["prod", "prod"],
      ["productio", "productio"],
      ["production-evil", "production-evil"],
      ["with a Cyrillic о", "pr\u043eduction"],
      ["empty", ""],
      ["null", null],
      ["an array", ["production"]],
      ["a list", "production,staging"],
      ["a wildcard", "*"],
      ["a number", 1],
    ] as const
  ).map(([name, environment]): ForgedCase => ({
    name: `environment ${name}`,
    token: (fx) => gh(fx, { environment }),
    refusal: denied("environment", "environment"),
  })),
};

const forkGroup: Group = {
  category: "fork events (GitHub)",
  copy: "github",
  control: (fx) => gh(fx),
  accepted: [
    { name: "workflow_dispatch on main", token: (fx) => gh(fx, { event_name: "workflow_dispatch" }) },
    { name: "schedule on main", token: (fx) => gh(fx, { event_name: "schedule" }) },
    { name: "release on main", token: (fx) => gh(fx, { event_name: "release" }) },
    { name: "repository_dispatch on main", token: (fx) => gh(fx, { event_name: "repository_dispatch" }) },
  ],
  cases: [
    ...(
      [
        [
          "pull_request on refs/pull/1/merge",
          { event_name: "pull_request", ref: "refs/pull/1/merge", head_ref: "evil", base_ref: "main" },
        ],
        ["pull_request on refs/heads/main", { event_name: "pull_request" }],
        [
          "pull_request_target on main",
          { event_name: "pull_request_target", head_ref: "evil", base_ref: "main" },
        ],
        ["pull_request_target without head_ref", { event_name: "pull_request_target" }],
        ["workflow_run on main", { event_name: "workflow_run" }],
        ["workflow_run on main in production", { event_name: "workflow_run", environment: "production" }],
        ["pull_request on release/1.0", { event_name: "pull_request", ref: "refs/heads/release/1.0" }],
        ["issue_comment on main (anyone can comment)", { event_name: "issue_comment" }],
        ["issues on main (anyone can open one)", { event_name: "issues" }],
        ["discussion_comment on main", { event_name: "discussion_comment" }],
        ["watch on main (a star)", { event_name: "watch" }],
        ["merge_group (a queued pull request's code)", { event_name: "merge_group" }],
        ["an event GitHub may add later", { event_name: "issue_reaction" }],
        ["event_name absent", { event_name: undefined }],
        ["event_name null", { event_name: null }],
      ] as const
    ).map(([name, claims]): ForgedCase => ({
      name,
      token: (fx) => gh(fx, claims),
      refusal: denied("fork", "event_name"),
    })),
  ],
};

const gitlabForkGroup: Group = {
  category: "GitLab fork MR",
  copy: "gitlab",
  control: (fx) => gl(fx),
  accepted: [{ name: "project_id as the number 20", token: (fx) => gl(fx, { project_id: 20 }) }],
  cases: [
    {
      name: "a fork's merge request pipeline in the parent (project_id 99, job_project_id 20)",
      token: (fx) =>
        gl(fx, {
          project_id: "99",
          project_path: "mallory/app",
          namespace_id: "98",
          namespace_path: "mallory",
          pipeline_source: "merge_request_event",
        }),
      refusal: denied("fork", "project_id"),
    },
    {
      name: "project_id another, nothing else",
      token: (fx) => gl(fx, { project_id: "99" }),
      refusal: denied("fork", "project_id"),
    },
    {
      name: "project_id absent",
      token: (fx) => gl(fx, { project_id: undefined }),
      refusal: denied("fork", "project_id"),
    },
    {
      name: "project_id with a leading zero",
      token: (fx) => gl(fx, { project_id: "020" }),
      refusal: denied("fork", "project_id"),
    },
    {
      name: "project_id the number 99",
      token: (fx) => gl(fx, { project_id: 99 }),
      refusal: denied("fork", "project_id"),
    },
    {
      name: "project_id null",
      token: (fx) => gl(fx, { project_id: null }),
      refusal: denied("fork", "project_id"),
    },
    {
      name: "GitLab before 18.3 (no job_project_*): a merge request pipeline",
      token: (fx) => gl(fx, { ...OLD_GITLAB, pipeline_source: "merge_request_event" }),
      refusal: denied("fork", "pipeline_source"),
    },
    {
      name: "GitLab before 18.3: a pipeline of the fork itself",
      token: (fx) =>
        gl(fx, { ...OLD_GITLAB, project_id: "99", project_path: "mallory/app", namespace_id: "98" }),
      refusal: denied("repository", "project_path"),
    },
    {
      name: "a job running in the fork (job_project_* the fork's)",
      token: (fx) =>
        gl(fx, {
          project_id: "99",
          project_path: "mallory/app",
          job_project_id: "99",
          job_project_path: "mallory/app",
          job_namespace_id: "98",
        }),
      refusal: denied("repository", "job_project_path"),
    },
  ],
};

const gitlabProtectedGroup: Group = {
  category: "GitLab ref_protected",
  copy: "gitlab",
  control: (fx) => gl(fx),
  cases: (
    [
      ["false", "false"],
      ["absent", undefined],
      ["the boolean true", true],
      ["TRUE", "TRUE"],
      ["True", "True"],
      ["1", "1"],
      ["yes", "yes"],
      ["empty", ""],
      ["null", null],
      ["with a trailing space", "true "],
    ] as const
  ).map(([name, value]): ForgedCase => ({
    name: `ref_protected ${name}`,
    token: (fx) => gl(fx, { ref_protected: value }),
    refusal: denied("protected-ref", "ref_protected"),
  })),
};

const gitlabProjectGroup: Group = {
  category: "GitLab project_path / project_id",
  copy: "gitlab",
  control: (fx) => gl(fx),
  cases: [
    ...(
      [
        ["capitalised group", "Acme/app"],
        ["capitalised project", "acme/App"],
        ["upper case", "ACME/APP"],
        ["a Cyrillic а", "\u0430cme/app"],
        ["a trailing space", "acme/app "],
        ["a leading space", " acme/app"],
        ["a trailing slash", "acme/app/"],
        ["a longer name", "acme/app-evil"],
        ["a subgroup", "acme/sub/app"],
        ["the slash percent-encoded", "acme%2Fapp"],
        ["':' injection", "acme/app:ref_type:branch:ref:main"],
        ["a full-width solidus", "acme\uff0fapp"],
      ] as const
    ).map(([name, path]): ForgedCase => ({
      name: `project path with ${name}`,
      token: (fx) => gl(fx, { project_path: path, job_project_path: path }),
      refusal: denied("repository", "job_project_path"),
    })),
    {
      name: "job_project_path another, project_path right",
      token: (fx) => gl(fx, { job_project_path: "mallory/app" }),
      refusal: denied("repository", "job_project_path"),
    },
    {
      name: "job_project_path absent (job_project_id present)",
      token: (fx) => gl(fx, { job_project_path: undefined }),
      refusal: denied("repository", "job_project_path"),
    },
    {
      name: "GitLab before 18.3: project_path in upper case",
      token: (fx) => gl(fx, { ...OLD_GITLAB, project_path: "ACME/APP" }),
      refusal: denied("repository", "project_path"),
    },
    {
      name: "project ids another (a re-created project)",
      token: (fx) => gl(fx, { project_id: "21", job_project_id: "21" }),
      refusal: denied("repository-id", "job_project_id"),
    },
    {
      name: "project ids with a leading zero",
      token: (fx) => gl(fx, { project_id: "020", job_project_id: "020" }),
      refusal: denied("repository-id", "job_project_id"),
    },
    {
      name: "GitLab before 18.3: project_id another",
      token: (fx) => gl(fx, { ...OLD_GITLAB, project_id: "21" }),
      refusal: denied("repository-id", "project_id"),
    },
  ],
};

const gitlabNamespaceGroup: Group = {
  category: "GitLab namespace_id",
  copy: "gitlab",
  control: (fx) => gl(fx),
  cases: [
    ...(
      [
        ["another", "73"],
        ["with a leading zero", "072"],
        ["with a leading space", " 72"],
        ["a fraction", 72.5],
        ["null", null],
        ["absent", undefined],
      ] as const
    ).map(([name, id]): ForgedCase => ({
      name: `job_namespace_id ${name}`,
      token: (fx) => gl(fx, { job_namespace_id: id, namespace_id: id }),
      refusal: denied("owner-id", "job_namespace_id"),
    })),
    {
      name: "job_namespace_id another, namespace_id right",
      token: (fx) => gl(fx, { job_namespace_id: "73" }),
      refusal: denied("owner-id", "job_namespace_id"),
    },
    {
      name: "GitLab before 18.3: namespace_id another",
      token: (fx) => gl(fx, { ...OLD_GITLAB, namespace_id: "73" }),
      refusal: denied("owner-id", "namespace_id"),
    },
  ],
};

const gitlabRefGroup: Group = {
  category: "GitLab ref",
  copy: "gitlab",
  control: (fx) => gl(fx),
  cases: [
    {
      name: "ref_type tag",
      token: (fx) => gl(fx, { ref_type: "tag", ref_path: "refs/tags/main" }),
      refusal: denied("ref", "ref_type"),
    },
    {
      name: "ref_type absent",
      token: (fx) => gl(fx, { ref_type: undefined }),
      refusal: denied("ref", "ref_type"),
    },
    {
      name: "ref_type Branch",
      token: (fx) => gl(fx, { ref_type: "Branch" }),
      refusal: denied("ref", "ref_type"),
    },
    {
      name: "ref empty",
      token: (fx) => gl(fx, { ref: "", ref_path: undefined }),
      refusal: denied("ref", "ref"),
    },
    {
      name: "ref absent",
      token: (fx) => gl(fx, { ref: undefined, ref_path: undefined }),
      refusal: denied("ref", "ref"),
    },
    {
      name: "ref_path of a tag, ref main",
      token: (fx) => gl(fx, { ref_path: "refs/tags/main" }),
      refusal: denied("ref", "ref_path"),
    },
    {
      name: "ref_path of another branch, ref main",
      token: (fx) => gl(fx, { ref_path: "refs/heads/dev" }),
      refusal: denied("ref", "ref_path"),
    },
    ...(["refs/heads/main", "Main", "main-evil", "main ", "main/../dev", "dev"] as const).map(
      (ref): ForgedCase => ({
        name: `ref ${JSON.stringify(ref)}`,
        token: (fx) => gl(fx, { ref, ref_path: `refs/heads/${ref}` }),
        refusal: denied("branch", "ref"),
      }),
    ),
  ],
};

/** The token the organisation's copy admits: octo-org/org-repo (76). */
const orgRepoToken = (fx: Fixtures): Promise<string> =>
  gh(fx, { repository: "octo-org/org-repo", repository_id: "76" });

const anotherCopyGroup: Group = {
  category: "another vault or org copy",
  copy: "github",
  control: (fx) => gh(fx),
  accepted: [{ name: "the organisation's own token, with its slug", to: "org", token: orgRepoToken }],
  cases: [
    {
      name: "this repository's token for a vault whose policy names another repository",
      to: "github-other-repo",
      token: (fx) => gh(fx),
      refusal: denied("repository", "repository"),
    },
    {
      name: "the organisation copy's token for this personal copy",
      token: orgRepoToken,
      refusal: denied("repository", "repository"),
    },
    {
      name: "the organisation copy's token without the slug (the owner's personal copy of that vault)",
      to: "org-owner-personal",
      token: orgRepoToken,
      refusal: denied("repository", "repository"),
    },
    {
      name: "the owner's personal copy's token with the organisation's slug",
      to: "org",
      token: (fx) => gh(fx),
      refusal: denied("repository", "repository"),
    },
    {
      name: "the organisation copy's token under another organisation's slug",
      to: "org-empty",
      token: orgRepoToken,
      refusal: NOT_ENABLED,
    },
    {
      name: "the organisation copy's token under a slug no organisation has",
      to: "org-missing",
      token: orgRepoToken,
      refusal: NOT_ENABLED,
    },
    {
      name: "this copy's token for a vault the server does not know",
      to: "no-policy",
      token: (fx) => gh(fx),
      refusal: NOT_ENABLED,
    },
    {
      name: "this copy's token for a copy whose policy has another audience",
      to: "github-other-audience",
      token: (fx) => gh(fx),
      refusal: invalid(/audience is not/),
    },
    {
      name: "a GitHub token for the GitLab copy",
      to: "gitlab",
      token: (fx) => gh(fx),
      refusal: UNKNOWN_KEY,
    },
    {
      name: "the GitLab copy's token for this GitHub copy",
      token: (fx) => gl(fx),
      refusal: UNKNOWN_KEY,
    },
    {
      name: "a GitHub-shaped token from the GitLab issuer for the GitLab copy",
      to: "gitlab",
      token: (fx) => fx.gitlab.mint({ environment: "production" }),
      refusal: denied("repository", "project_path"),
    },
  ],
};

const GROUPS: readonly Group[] = [
  signatureGroup,
  algorithmGroup,
  publicKeyGroup,
  kidGroup,
  embeddedKeyGroup,
  issuerGroup,
  audienceGroup,
  timesGroup,
  jtiGroup,
  repositoryGroup,
  idsGroup,
  subGroup,
  branchGroup,
  environmentGroup,
  forkGroup,
  gitlabForkGroup,
  gitlabProtectedGroup,
  gitlabProjectGroup,
  gitlabNamespaceGroup,
  gitlabRefGroup,
  anotherCopyGroup,
];

const CASES = GROUPS.reduce((n, group) => n + group.cases.length, 0);
const MINIMUM_CASES = 200;

// ---- The suite --------------------------------------------------------------------------------------------------

/** A fresh client address per request, so the refusals do not add up to one address's limit. */
const freshAddress = (): string => `10.${randomBytes(3).join(".")}`;

describeEachDatabase("forged CI tokens through the exchange", (target) => {
  let database: OpenDatabase;
  let server: SyncServer;
  let alice: Caller;
  let owner: Member;
  let fx: Fixtures;
  const copies = new Map<CopyName, { vaultId: string; org?: string }>();
  /** category → [refused as expected, total]. */
  const matrix = new Map<string, [number, number]>();

  beforeAll(async () => {
    const [github, gitlab, attacker] = await Promise.all([startCiIssuer(), startCiIssuer(), startCiIssuer()]);
    const attackerPair = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const published = await publishedKeys(github);
    fx = {
      github,
      gitlab,
      attacker,
      attackerKey: {
        privateKey: attackerPair.privateKey,
        publicJwk: { ...(await exportJWK(attackerPair.publicKey)), kid: "attacker", alg: "RS256" },
      },
      attackerCert: selfSignedCertificate(),
      published,
      control: "",
    };
    database = await openMigrated(await target.fresh());
    server = await startSyncServer(database, {
      ciIssuers: [
        { provider: "github", url: github.url },
        { provider: "gitlab", url: gitlab.url },
      ],
    });
    alice = await server.caller();
    owner = await newMember(server, database.db);

    const githubPolicy: CiPolicy = {
      provider: "github",
      issuer: github.url,
      repository: "octo-org/octo-repo",
      repositoryId: "74",
      ownerId: "65",
      branches: ["main", "release/*"],
      environments: ["production"],
      allowForks: false,
      protectedRefsOnly: false,
      audience: TEST_CI_AUDIENCE,
    };
    copies.set("github", await personalCopy(alice, githubPolicy));
    copies.set("github-twin", await personalCopy(alice, githubPolicy));
    copies.set(
      "github-other-repo",
      await personalCopy(alice, { ...githubPolicy, repository: "octo-org/other-repo", repositoryId: "75" }),
    );
    copies.set(
      "github-other-audience",
      await personalCopy(alice, { ...githubPolicy, audience: OTHER_AUDIENCE }),
    );
    copies.set(
      "gitlab",
      await personalCopy(alice, {
        ...githubPolicy,
        provider: "gitlab",
        issuer: gitlab.url,
        repository: "acme/app",
        repositoryId: "20",
        ownerId: "72",
        branches: ["main"],
        environments: [],
        protectedRefsOnly: true,
      }),
    );
    // One vault, two copies with two policies: the organisation's and its owner's personal one.
    const slug = `forged-${randomUUID().slice(0, 8)}`;
    const emptySlug = `${slug}-empty`;
    await makeOrg(server, owner, slug);
    await makeOrg(server, owner, emptySlug);
    const shared = await orgCopy(slug, {
      ...githubPolicy,
      repository: "octo-org/org-repo",
      repositoryId: "76",
    });
    copies.set("org", { vaultId: shared, org: slug });
    copies.set("org-owner-personal", await personalCopy(owner, githubPolicy, shared));
    copies.set("org-empty", { vaultId: shared, org: emptySlug });
    copies.set("org-missing", { vaultId: shared, org: `${slug}-missing` });
    copies.set("no-policy", { vaultId: randomUUID() });
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    await database?.close();
    await Promise.all([fx?.github.close(), fx?.gitlab.close(), fx?.attacker.close()]);
  });

  /** `owner`'s personal copy of `vaultId` (a new vault by default) at version 1, CI enabled under `policy`. */
  async function personalCopy(
    who: Caller,
    policy: CiPolicy,
    vaultId: string = randomUUID(),
  ): Promise<{ vaultId: string }> {
    const vaultKey = newVaultKey();
    const pushed = await call(
      server.app,
      who.token,
      "PUT",
      `/api/v1/vaults/${vaultId}`,
      pushBody(await sealBlob(vaultKey, vaultId, 1, DOCUMENT), 0),
    );
    expect(pushed.statusCode, pushed.body).toBe(200);
    await enable(who, `/api/v1/vaults/${vaultId}/ci`, policy, vaultKey);
    return { vaultId };
  }

  /** A vault shared into `slug` by its owner at version 1, CI enabled on that copy under `policy`. */
  async function orgCopy(slug: string, policy: CiPolicy): Promise<string> {
    const vaultId = randomUUID();
    const vaultKey = newVaultKey();
    const body = {
      ...(await shareBody(owner, slug, vaultId, 0, vaultKey, [owner])),
      encryptedBlob: toBase64(
        await sealEnvelope(vaultKey, utf8Encode(DOCUMENT), syncBlobContext(vaultId, 1, slug)),
      ),
    };
    const res = await call(server.app, owner.token, "PUT", `/${slug}/vaults/${vaultId}/share`, body);
    expect(res.statusCode, res.body).toBe(200);
    await enable(owner, `${ORGS_PATH}/${slug}/vaults/${vaultId}/ci`, policy, vaultKey);
    return vaultId;
  }

  async function enable(who: Caller, path: string, policy: CiPolicy, vaultKey: Uint8Array): Promise<void> {
    const escrow = {
      escrowedKey: await wrapKeyForRecipient(vaultKey, TEST_ESCROW_KEY.publicKey),
      escrowKeyFingerprint: TEST_ESCROW_KEY.fingerprint,
    };
    const proof = await stepUpProofFor(server.identity, who.token, "vault:ci:enable");
    const res = await call(
      server.app,
      who.token,
      "PUT",
      path,
      { policy, escrow },
      { [STEP_UP_HEADER]: proof },
    );
    expect(res.statusCode, res.body).toBe(200);
  }

  function exchange(copy: CopyName, token: string): Promise<LightMyRequestResponse> {
    const to = copies.get(copy);
    if (to === undefined) throw new Error(`no copy ${copy}`);
    return server.app.inject({
      method: "POST",
      url: `${CI_PATH}/oidc`,
      remoteAddress: freshAddress(),
      headers: { "x-latchkey-request-id": newRequestId() },
      payload: { vaultId: to.vaultId, token, ...(to.org === undefined ? {} : { org: to.org }) },
    });
  }

  /** Rows of vault.ci.exchange in the whole audit log, and spent tokens in the replay table. */
  async function counts(): Promise<{ exchanges: number; spent: number }> {
    const db = database.db;
    const exchanges = await db
      .selectFrom("audit_events")
      .select((eb) => eb.fn.countAll().as("n"))
      .where("action", "=", "vault.ci.exchange")
      .executeTakeFirstOrThrow();
    const spent = await db
      .selectFrom("ci_token_uses")
      .select((eb) => eb.fn.countAll().as("n"))
      .executeTakeFirstOrThrow();
    return { exchanges: Number(exchanges.n), spent: Number(spent.n) };
  }

  const jtiOf = (token: string): unknown => {
    try {
      return decoded(parts(token)[1]).jti;
    } catch {
      return undefined;
    }
  };
  const isSpent = async (jti: unknown): Promise<boolean> =>
    typeof jti === "string" &&
    (await database.db.selectFrom("ci_token_uses").select("jti").where("jti", "=", jti).execute()).length > 0;

  /** Exchanges `token` for `copy`; the problems if it did not get a signed CI token, audited and spent. */
  async function exchanged(copy: CopyName, token: string): Promise<string[]> {
    const before = await counts();
    const res = await exchange(copy, token);
    if (res.statusCode !== 200) return [`expected 200, got ${res.statusCode} ${res.body}`];
    const problems: string[] = [];
    if (res.headers["x-latchkey-signature"] !== injectedSignature(token, res))
      problems.push("answer not signed");
    if (!checkSchema(ciExchangeResponseSchema, res.json()).ok) problems.push("answer is not a CI token");
    const after = await counts();
    if (after.exchanges !== before.exchanges + 1) problems.push("no vault.ci.exchange row");
    if (!(await isSpent(jtiOf(token)))) problems.push("its jti was not spent");
    return problems;
  }

  /** Sends a case; the problems if it was not refused as it must be. */
  async function refusedAsExpected(group: Group, forged: ForgedCase): Promise<string[]> {
    const token = await forged.token(fx);
    const jti = jtiOf(token);
    const spentBefore = await isSpent(jti);
    const before = await counts();
    const res = await exchange(forged.to ?? group.copy, token);
    const after = await counts();
    const problems: string[] = [];
    const { status, code, says } = forged.refusal;
    let body: { code?: unknown; message?: unknown; accessToken?: unknown } = {};
    try {
      body = res.json();
    } catch {
      problems.push(`a body that is not JSON: ${res.body.slice(0, 200)}`);
    }
    if (res.statusCode !== status || body.code !== code) {
      problems.push(
        `expected ${status} ${code}, got ${res.statusCode} ${String(body.code)}: ${String(body.message)}`,
      );
    } else if (says !== undefined && !says.test(String(body.message))) {
      problems.push(`message ${JSON.stringify(body.message)} does not match ${String(says)}`);
    }
    if (body.accessToken !== undefined) problems.push("answered a CI access token");
    if (res.headers["x-latchkey-signature"] !== undefined) problems.push("answer signed");
    if (token.length > 16 && res.body.includes(token)) problems.push("the token is quoted");
    if (after.exchanges !== before.exchanges) problems.push("a vault.ci.exchange row was written");
    if (after.spent !== before.spent) problems.push("a jti was spent");
    if (!spentBefore && (await isSpent(jti))) problems.push("its jti is spent");
    return problems;
  }

  for (const group of GROUPS) {
    it(`${group.category}: the untampered token passes, then ${group.cases.length} forged ones are refused`, async () => {
      // The control first: if the fixture is broken it fails here rather than making every refusal look right.
      fx.control = await group.control(fx);
      expect(await exchanged(group.copy, fx.control), `${group.category}: control`).toEqual([]);
      for (const extra of group.accepted ?? []) {
        expect(
          await exchanged(extra.to ?? group.copy, await extra.token(fx)),
          `accepted: ${extra.name}`,
        ).toEqual([]);
      }
      const failures: string[] = [];
      let refused = 0;
      for (const forged of group.cases) {
        const problems = await refusedAsExpected(group, forged);
        if (problems.length === 0) refused += 1;
        else failures.push(`${forged.name}: ${problems.join("; ")}`);
      }
      matrix.set(group.category, [refused, group.cases.length]);
      expect(failures, group.category).toEqual([]);
    }, 120_000);
  }

  it(`has at least ${MINIMUM_CASES} forged cases, and every one was refused`, () => {
    expect(CASES).toBeGreaterThanOrEqual(MINIMUM_CASES);
    const width = Math.max(...GROUPS.map((g) => g.category.length));
    const lines = GROUPS.map((g) => {
      const [refused, total] = matrix.get(g.category) ?? [0, g.cases.length];
      return `  ${g.category.padEnd(width)}  ${String(refused).padStart(3)} / ${total}`;
    });
    const refusedAll = [...matrix.values()].reduce((n, [refused]) => n + refused, 0);
    console.log(
      [
        `forged CI tokens (${target.kind}): category → refused / total`,
        ...lines,
        `  ${"all".padEnd(width)}  ${String(refusedAll).padStart(3)} / ${CASES}`,
      ].join("\n"),
    );
    // Nothing was fetched from the attacker's host: jku and x5u are never followed.
    expect(fx.attacker.requests.paths).toEqual([]);
    expect(refusedAll).toBe(CASES);
  });
});

/** The github issuer's published RS256 and ES256 keys. */
async function publishedKeys(issuer: CiIssuer): Promise<{ RS256: JWK; ES256: JWK }> {
  const set = (await (await fetch(`${issuer.url}${TEST_JWKS_PATH}`)).json()) as { keys: JWK[] };
  const find = (alg: "RS256" | "ES256"): JWK => {
    const key = set.keys.find((k) => k.kid === issuer.kid(alg));
    if (key === undefined) throw new Error(`the issuer publishes no ${alg} key`);
    return key;
  };
  return { RS256: find("RS256"), ES256: find("ES256") };
}

/** A self-signed certificate and its key, as an attacker would put in x5c (openssl; nothing of it is trusted). */
function selfSignedCertificate(): Fixtures["attackerCert"] {
  const output = execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "-",
      "-out",
      "-",
      "-subj",
      "/CN=attacker.example",
      "-days",
      "1",
    ],
    { stdio: ["ignore", "pipe", "ignore"] },
  ).toString("utf8");
  const key = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/.exec(output)?.[0];
  const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(output)?.[0];
  if (key === undefined || cert === undefined) throw new Error("openssl made no certificate");
  const raw = new X509Certificate(cert).raw;
  return {
    privateKey: createPrivateKey(key),
    der: raw.toString("base64"),
    sha1: createHash("sha1").update(raw).digest("base64url"),
    sha256: createHash("sha256").update(raw).digest("base64url"),
  };
}

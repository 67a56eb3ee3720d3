// An independent check of AWS Signature Version 4 (the "AWS4-HMAC-SHA256" Authorization header), rebuilt with
// node:crypto from AWS's documented algorithm
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html), not by asking the SDK to sign again:
// 1. the canonical request: method, canonical URI, canonical query, the signed headers as `name:value` lines
//    (lower-case names, trimmed values with inner runs of spaces collapsed), the signed header names, and the hex
//    SHA-256 of the body as received;
// 2. the string to sign: "AWS4-HMAC-SHA256", the X-Amz-Date, the credential scope, the canonical request's hash;
// 3. the signing key: HMAC-SHA256 chained over "AWS4" + secret, the date, the region, the service, "aws4_request";
// 4. the signature: hex HMAC-SHA256 of the string to sign under that key.
// It answers the way AWS's JSON services do: a key it does not know is UnrecognizedClientException, a signature
// that does not verify (or is expired, or scoped to another date, region or service) InvalidSignatureException.
//
// Imported by vitest suites only: node: builtins only.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { RecordedRequest } from "./double.js";

/** How far X-Amz-Date may be from the verifier's clock, as AWS allows. */
export const MAX_SKEW_MS = 5 * 60_000;

/** Why a signature was refused, as AWS's `__type` and message. */
export interface SigV4Refusal {
  readonly type:
    | "MissingAuthenticationTokenException"
    | "IncompleteSignatureException"
    | "UnrecognizedClientException"
    | "InvalidSignatureException";
  readonly message: string;
}

/** The lower-case hex SHA-256 of `data`. */
export function sha256Hex(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac("sha256", key).update(data, "utf8").digest();
}

/** The SigV4 signing key for a secret access key, a date (YYYYMMDD), a region and a service. */
export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), "aws4_request");
}

/** The hex signature of a string to sign under a signing key. */
export function signatureOf(key: Buffer, stringToSign: string): string {
  return createHmac("sha256", key).update(stringToSign, "utf8").digest("hex");
}

// RFC 3986: unreserved characters stay, every other byte is %XX in upper case.
function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** The canonical URI of a non-S3 service: each path segment URI-encoded (the received, encoded path once more). */
export function canonicalUri(path: string): string {
  if (path === "" || path === "/") return "/";
  return path
    .split("/")
    .map((segment) => uriEncode(segment))
    .join("/");
}

/** The canonical query: each name and value decoded then URI-encoded, sorted by name then value. */
export function canonicalQuery(search: string): string {
  const pairs = search
    .replace(/^\?/, "")
    .split("&")
    .filter((part) => part !== "")
    .map((part) => {
      const at = part.indexOf("=");
      const name = decodeURIComponent(at < 0 ? part : part.slice(0, at));
      const value = at < 0 ? "" : decodeURIComponent(part.slice(at + 1));
      return [uriEncode(name), uriEncode(value)] as const;
    });
  pairs.sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0));
  return pairs.map(([name, value]) => `${name}=${value}`).join("&");
}

/** The canonical request of AWS's algorithm, from what was received. */
export function canonicalRequest(options: {
  method: string;
  path: string;
  search: string;
  headers: Record<string, string | string[] | undefined>;
  signedHeaders: readonly string[];
  payloadHash: string;
}): string {
  const lines = options.signedHeaders.map((name) => {
    const raw = options.headers[name];
    const value = Array.isArray(raw) ? raw.join(",") : (raw ?? "");
    return `${name}:${value.trim().replace(/ +/g, " ")}\n`;
  });
  return [
    options.method.toUpperCase(),
    canonicalUri(options.path),
    canonicalQuery(options.search),
    lines.join(""),
    options.signedHeaders.join(";"),
    options.payloadHash,
  ].join("\n");
}

/**
 * Verifies a request's SigV4 signature for `service` in `region` with the secret of the key id it names (from
 * `keys`), at `now`. Null when it verifies; else AWS's refusal.
 */
export function verifySigV4(
  request: RecordedRequest,
  options: { keys: ReadonlyMap<string, string>; region: string; service: string; now: number },
): SigV4Refusal | null {
  const authorization = request.headers.authorization;
  if (authorization === undefined)
    return { type: "MissingAuthenticationTokenException", message: "Missing Authentication Token" };
  const match =
    /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(
      authorization,
    );
  if (match === null)
    return {
      type: "IncompleteSignatureException",
      message: "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters.",
    };
  const [, keyId, date, region, service, signedList, signature] = match as unknown as string[];
  const secret = options.keys.get(keyId!);
  if (secret === undefined)
    return {
      type: "UnrecognizedClientException",
      message: "The security token included in the request is invalid.",
    };
  const signed = signedList!.split(";");
  const sorted = [...signed].sort();
  if (signed.join(";") !== sorted.join(";") || new Set(signed).size !== signed.length)
    return { type: "InvalidSignatureException", message: "SignedHeaders must be sorted and unique." };
  for (const required of ["host", "x-amz-date"])
    if (!signed.includes(required))
      return {
        type: "IncompleteSignatureException",
        message: `'${required}' must be a 'SignedHeader' in the AWS Authorization.`,
      };
  for (const name of signed)
    if (request.headers[name] === undefined)
      return { type: "InvalidSignatureException", message: `The signed header ${name} is missing.` };
  const amzDate = String(request.headers["x-amz-date"]);
  const stamp = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (stamp === null)
    return {
      type: "IncompleteSignatureException",
      message: "X-Amz-Date must be in the ISO8601 basic format.",
    };
  const [, y, mo, d, h, mi, s] = stamp.map(Number);
  const at = Date.UTC(y!, mo! - 1, d, h, mi, s);
  if (Math.abs(at - options.now) > MAX_SKEW_MS)
    return {
      type: "InvalidSignatureException",
      message: `Signature expired: ${amzDate} is outside the 5 minutes around the server's time.`,
    };
  if (date !== amzDate.slice(0, 8))
    return {
      type: "InvalidSignatureException",
      message: "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.",
    };
  if (region !== options.region)
    return {
      type: "InvalidSignatureException",
      message: `Credential should be scoped to a valid region, not '${region}'.`,
    };
  if (service !== options.service)
    return {
      type: "InvalidSignatureException",
      message: `Credential should be scoped to correct service: '${options.service}'.`,
    };
  const payloadHash = sha256Hex(Buffer.from(request.body, "utf8"));
  const declared = request.headers["x-amz-content-sha256"];
  if (declared !== undefined && declared !== payloadHash)
    return {
      type: "InvalidSignatureException",
      message: "The provided 'x-amz-content-sha256' header does not match what was computed.",
    };
  const url = new URL(request.url, "http://verifier");
  const canonical = canonicalRequest({
    method: request.method,
    path: url.pathname,
    search: url.search,
    headers: request.headers,
    signedHeaders: signed,
    payloadHash,
  });
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256Hex(canonical)].join("\n");
  const expected = signatureOf(signingKey(secret, date, region, service), stringToSign);
  if (!timingSafeEqual(Buffer.from(expected, "hex"), Buffer.from(signature!, "hex")))
    return {
      type: "InvalidSignatureException",
      message:
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
    };
  return null;
}

/**
 * The headers that sign a JSON 1.1 `POST /` to `url` for `service` in `region` at `now`, computed by this file's
 * algorithm: for tests that must send the double a well-signed request of a wrong shape.
 */
export function signedJsonHeaders(options: {
  url: string;
  target: string;
  body: string;
  keyId: string;
  secret: string;
  region: string;
  service: string;
  now: number;
  contentType?: string;
}): Record<string, string> {
  const amzDate = new Date(options.now)
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
  const date = amzDate.slice(0, 8);
  const headers: Record<string, string> = {
    "content-type": options.contentType ?? "application/x-amz-json-1.1",
    host: new URL(options.url).host,
    "x-amz-date": amzDate,
    "x-amz-target": options.target,
  };
  const signed = Object.keys(headers).sort();
  const canonical = canonicalRequest({
    method: "POST",
    path: "/",
    search: "",
    headers,
    signedHeaders: signed,
    payloadHash: sha256Hex(options.body),
  });
  const scope = `${date}/${options.region}/${options.service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256Hex(canonical)].join("\n");
  const signature = signatureOf(
    signingKey(options.secret, date, options.region, options.service),
    stringToSign,
  );
  const { host: _host, ...sent } = headers;
  return {
    ...sent,
    authorization: `AWS4-HMAC-SHA256 Credential=${options.keyId}/${scope}, SignedHeaders=${signed.join(";")}, Signature=${signature}`,
  };
}

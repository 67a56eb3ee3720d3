import { describe, expect, it } from "vitest";
import type { RecordedRequest } from "./double.js";
import { canonicalRequest, sha256Hex, signatureOf, signingKey, verifySigV4 } from "./sigv4.js";

// AWS's worked example of the whole signing process (IAM ListUsers, AWS General Reference, "Signature Version 4
// signing process" examples): its canonical request hash, signing key and signature are published.
const EXAMPLE: RecordedRequest = {
  method: "GET",
  url: "/?Action=ListUsers&Version=2010-05-08",
  headers: {
    "content-type": "application/x-www-form-urlencoded; charset=utf-8",
    host: "iam.amazonaws.com",
    "x-amz-date": "20150830T123600Z",
    authorization:
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
  },
  body: "",
};
const SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const AT = Date.parse("2015-08-30T12:36:00Z");
const options = { keys: new Map([["AKIDEXAMPLE", SECRET]]), region: "us-east-1", service: "iam", now: AT };

describe("the SigV4 verifier", () => {
  it("reproduces AWS's published example step by step", () => {
    const canonical = canonicalRequest({
      method: "GET",
      path: "/",
      search: "?Action=ListUsers&Version=2010-05-08",
      headers: EXAMPLE.headers,
      signedHeaders: ["content-type", "host", "x-amz-date"],
      payloadHash: sha256Hex(""),
    });
    expect(sha256Hex(canonical)).toBe("f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59");
    const key = signingKey(SECRET, "20150830", "us-east-1", "iam");
    expect(key.toString("hex")).toBe("c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
    const stringToSign = `AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n${sha256Hex(canonical)}`;
    expect(signatureOf(key, stringToSign)).toBe(
      "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
    );
    expect(verifySigV4(EXAMPLE, options)).toBeNull();
  });

  it("refuses what AWS refuses", () => {
    const refused = (request: Partial<RecordedRequest>, changed: Partial<typeof options> = {}) =>
      verifySigV4({ ...EXAMPLE, ...request }, { ...options, ...changed })?.type;
    const header = (name: string, value: string | undefined) => ({
      headers: { ...EXAMPLE.headers, [name]: value },
    });
    expect(refused(header("authorization", undefined))).toBe("MissingAuthenticationTokenException");
    expect(refused(header("authorization", "Bearer x"))).toBe("IncompleteSignatureException");
    expect(refused({}, { keys: new Map([["OTHER", SECRET]]) })).toBe("UnrecognizedClientException");
    expect(refused({}, { keys: new Map([["AKIDEXAMPLE", `${SECRET}x`]]) })).toBe("InvalidSignatureException");
    expect(refused({ body: "tampered" })).toBe("InvalidSignatureException");
    expect(refused({ url: "/?Action=DeleteUser&Version=2010-05-08" })).toBe("InvalidSignatureException");
    expect(refused(header("content-type", "text/plain"))).toBe("InvalidSignatureException");
    expect(refused({}, { region: "eu-west-1" })).toBe("InvalidSignatureException");
    expect(refused({}, { service: "ssm" })).toBe("InvalidSignatureException");
    expect(refused({}, { now: AT + 6 * 60_000 })).toBe("InvalidSignatureException");
    expect(
      refused(
        header(
          "authorization",
          EXAMPLE.headers.authorization!.replace("content-type;host;x-amz-date", "content-type;x-amz-date"),
        ),
      ),
    ).toBe("IncompleteSignatureException");
  });
});

import { LatchkeyError } from "@latchkey/core";
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { awsAccessKey, awsErrorType, awsFailure } from "./aws.js";

describe("awsAccessKey", () => {
  it("reads ACCESS_KEY_ID:SECRET_ACCESS_KEY", () => {
    expect(awsAccessKey("aws-ssm", "AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")).toEqual({
      accessKeyId: "AKIAIOSFODNN7EXAMPLE",
      secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    });
  });

  it("refuses anything else with LK_USAGE that never quotes it", () => {
    for (const credential of [
      "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
      "AKIAIOSFODNN7EXAMPLE:",
      ":wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
      "akiaiosfodnn7example:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
      "AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY:session",
    ]) {
      let error: unknown;
      try {
        awsAccessKey("aws-sm", credential);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(LatchkeyError);
      expect((error as LatchkeyError).code).toBe("LK_USAGE");
      expect((error as LatchkeyError).hint).toContain("connect aws-sm");
      expect(JSON.stringify((error as LatchkeyError).toJSON())).not.toContain("wJalr");
    }
  });
});

describe("awsErrorType", () => {
  it("reads the header first, then the body's __type, without namespace or URL", () => {
    expect(awsErrorType("ThrottlingException:http://internal.amazon.com/coral/", "")).toBe(
      "ThrottlingException",
    );
    expect(awsErrorType(null, '{"__type":"com.amazonaws.ssm#TooManyUpdates","message":"x"}')).toBe(
      "TooManyUpdates",
    );
    expect(awsErrorType(null, "not json")).toBeNull();
    expect(awsErrorType(null, '{"__type":"<script>"}')).toBeNull();
  });
});

describe("awsFailure", () => {
  const awsError = (name: string, status = 400) =>
    Object.assign(new Error("Value 's3cret' at 'value' failed to satisfy constraint"), {
      name,
      $metadata: { httpStatusCode: status },
    });

  it("maps a refused key to LK_PLATFORM_UNAUTHORIZED and anything else to LK_PLATFORM_FAILED, never with AWS's message", () => {
    expect(awsFailure("aws-ssm", "x", awsError("UnrecognizedClientException")).code).toBe(
      "LK_PLATFORM_UNAUTHORIZED",
    );
    expect(awsFailure("aws-sm", "x", awsError("InvalidSignatureException")).code).toBe(
      "LK_PLATFORM_UNAUTHORIZED",
    );
    const other = awsFailure("aws-ssm", "writing a parameter", awsError("ValidationException"));
    expect(other.code).toBe("LK_PLATFORM_FAILED");
    expect(other.message).toBe(
      "aws-ssm: writing a parameter was refused with ValidationException (HTTP 400).",
    );
    expect(JSON.stringify(other.toJSON())).not.toContain("s3cret");
    expect(awsFailure("aws-ssm", "x", new TypeError("s3cret")).message).not.toContain("s3cret");
  });
});

describe("the AWS SDK", () => {
  it("is never imported statically: the CLI loads it only when an AWS push runs", async () => {
    // The CLI's bundle as scripts/build.mjs makes it, with every package left outside: a static import of the SDK
    // anywhere the CLI reaches would stay a top-level import, read at every command's start.
    const result = await build({
      entryPoints: [fileURLToPath(new URL("../cli.ts", import.meta.url))],
      bundle: true,
      write: false,
      platform: "node",
      format: "esm",
      packages: "external",
      conditions: ["source"],
      logLevel: "silent",
      define: { __LATCHKEY_VERSION__: '"0.0.0"' },
    });
    const text = result.outputFiles[0]!.text;
    expect(text).toContain('import("@aws-sdk/client-ssm")');
    expect(text).not.toMatch(/^\s*(import|export)\b[^;(]*from\s*["']@aws-sdk\//m);
    expect(text).not.toMatch(/^\s*import\s*["']@aws-sdk\//m);
  });
});

// The CLI refuses to push a vault document over MAX_VAULT_DOCUMENT_BYTES; the server must accept every vault
// under it, or a user meets a bare 413 for a vault the CLI promised to push.
import { describe, expect, it } from "vitest";
import {
  ENVELOPE_OVERHEAD,
  MAX_BLOB_BASE64,
  MAX_SCHEMA_JSON,
  MAX_VAULT_DOCUMENT_BYTES,
  MAX_WRAPPED_KEY_BASE64,
} from "@latchkey/core";
import { PUSH_BODY_LIMIT } from "../src/api/params.js";

describe("the push limits", () => {
  it("take the largest vault the CLI pushes, sealed and in base64, with room for the rest of the body", () => {
    const blob = Math.ceil((MAX_VAULT_DOCUMENT_BYTES + ENVELOPE_OVERHEAD) / 3) * 4;
    expect(blob).toBeLessThanOrEqual(MAX_BLOB_BASE64);
    // The other fields at their largest, the name, and the JSON around them.
    expect(MAX_BLOB_BASE64 + MAX_WRAPPED_KEY_BASE64 + MAX_SCHEMA_JSON + 4096).toBeLessThanOrEqual(
      PUSH_BODY_LIMIT,
    );
  });
});

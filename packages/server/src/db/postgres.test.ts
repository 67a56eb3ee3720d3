// The parts of the pg wiring that need no server: URL checking. Everything that talks to PostgreSQL runs against
// a real cluster in test/database-matrix.test.ts and test/readyz-matrix.test.ts.
import { LatchkeyError } from "@latchkey/core";
import { PostgresDialect } from "kysely";
import { describe, expect, it } from "vitest";
import { createPostgresDialect } from "./postgres.js";

describe("createPostgresDialect", () => {
  it.each([
    ["a port that is not a number", "postgres://latchkey:pw-canary-1@db.example:notaport/latchkey"],
    ["an unclosed IPv6 host", "postgres://latchkey:pw-canary-1@[::1/latchkey"],
  ])("refuses %s with LK_CONFIG_INVALID that never repeats the password", (_name, url) => {
    let error: unknown;
    try {
      createPostgresDialect(url);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(LatchkeyError);
    const { code, message, hint } = error as LatchkeyError;
    expect(code).toBe("LK_CONFIG_INVALID");
    expect(`${message} ${hint}`).not.toContain("pw-canary-1");
    expect(message).toContain("DATABASE_URL");
  });

  it("accepts the URL forms pg understands, without connecting", () => {
    for (const url of [
      "postgres://latchkey:secret@127.0.0.1:5432/latchkey",
      "postgresql://latchkey@db.example/latchkey?sslmode=require",
      "postgres://latchkey:p%40ss@[::1]:5433/latchkey",
    ]) {
      expect(createPostgresDialect(url)).toBeInstanceOf(PostgresDialect);
    }
  });
});

import type { AuditPageEntry } from "@latchkey/core";
import { describe, expect, it } from "vitest";
import { auditCsv, csvCell } from "./csv.js";

const entry = (over: Partial<AuditPageEntry> = {}): AuditPageEntry => ({
  id: "0190-id",
  action: "vault.push",
  createdAt: "2031-01-01T00:00:00.000Z",
  version: 3,
  vaultId: "0b6f5c1e-4a6b-4d1c-9d2e-3f4a5b6c7d8e",
  actor: { userId: "u-1", email: "alice@example.test" },
  environment: null,
  count: 1,
  metadata: { clientId: "latchkey-cli", blobSize: 12 },
  ...over,
});

describe("csvCell", () => {
  it("quotes commas, quotes and line breaks, doubling quotes", () => {
    expect(csvCell("plain")).toBe("plain");
    expect(csvCell("a,b")).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell("two\nlines")).toBe('"two\nlines"');
  });

  it("keeps a spreadsheet from running a cell as a formula", () => {
    for (const text of ["=HYPERLINK(1)", "+1", "-1", "@SUM(A1)", "\tx", "\rx"]) {
      expect(csvCell(text).replace(/^"/, "").startsWith("'")).toBe(true);
    }
    expect(csvCell("=1,2")).toBe(`"'=1,2"`);
  });
});

describe("auditCsv", () => {
  it("writes a header and one CRLF line per entry, in the columns' order", () => {
    const text = auditCsv([
      entry(),
      entry({
        id: "0191",
        action: "vault.ci.pull",
        actor: null,
        environment: "production",
        count: 2,
        version: null,
      }),
    ]);
    expect(text.split("\r\n")).toEqual([
      "time,action,actor,actor_id,vault,version,environment,count,metadata,id",
      `2031-01-01T00:00:00.000Z,vault.push,alice@example.test,u-1,0b6f5c1e-4a6b-4d1c-9d2e-3f4a5b6c7d8e,3,,1,"{""clientId"":""latchkey-cli"",""blobSize"":12}",0190-id`,
      `2031-01-01T00:00:00.000Z,vault.ci.pull,,,0b6f5c1e-4a6b-4d1c-9d2e-3f4a5b6c7d8e,,production,2,"{""clientId"":""latchkey-cli"",""blobSize"":12}",0191`,
      "",
    ]);
  });

  it("writes only the header for no entries", () => {
    expect(auditCsv([])).toBe("time,action,actor,actor_id,vault,version,environment,count,metadata,id\r\n");
  });
});

import { describe, expect, it } from "vitest";
import { environmentsOf, keysOf, missingRequired, readSchema } from "./env-schema.js";

describe("readSchema", () => {
  it("lists the rules by key, without running any pattern", () => {
    const read = readSchema({
      PORT: { format: "port", default: "8080" },
      API_KEY: { required: true, secret: true, description: "the API's key" },
      // A pattern that would backtrack for ages on a crafted value: never compiled here.
      NAME: { pattern: "(a+)+$", required: true },
    });
    expect(read.kind).toBe("ok");
    if (read.kind !== "ok") return;
    expect(read.rows).toEqual([
      {
        key: "API_KEY",
        required: true,
        format: null,
        pattern: null,
        default: null,
        secret: true,
        description: "the API's key",
      },
      {
        key: "NAME",
        required: true,
        format: null,
        pattern: "(a+)+$",
        default: null,
        secret: false,
        description: null,
      },
      {
        key: "PORT",
        required: false,
        format: "port",
        pattern: null,
        default: "8080",
        secret: false,
        description: null,
      },
    ]);
  });

  it("says when there is none, and when the stored one is not a schema this reads", () => {
    expect(readSchema(null)).toEqual({ kind: "none" });
    expect(readSchema({ PORT: { colour: "blue" } }).kind).toBe("unreadable");
    expect(readSchema({ "not a name": {} }).kind).toBe("unreadable");
  });
});

describe("missingRequired", () => {
  it("names the required keys unset or empty and without a default, whatever the other rules say", () => {
    const read = readSchema({
      A: { required: true },
      B: { required: true, default: "x" },
      C: { required: true, format: "url" },
      D: { required: true, pattern: "(a+)+$" },
      E: {},
    });
    if (read.kind !== "ok") throw new Error("unread");
    expect(
      missingRequired(read.schema, { A: "", C: "not a url", D: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab" }),
    ).toEqual(["A"]);
    expect(missingRequired(read.schema, {})).toEqual(["A", "C", "D"]);
  });
});

describe("environments and keys", () => {
  it("puts default first, then the others by name; a tab lists the schema's keys too", () => {
    expect(environmentsOf({ staging: {}, default: {}, ci: {} })).toEqual(["default", "ci", "staging"]);
    const read = readSchema({ Z: {}, A: {} });
    if (read.kind !== "ok") throw new Error("unread");
    expect(keysOf({ M: "1", A: "2" }, read.schema)).toEqual(["A", "M", "Z"]);
    expect(keysOf({ M: "1" }, null)).toEqual(["M"]);
  });
});

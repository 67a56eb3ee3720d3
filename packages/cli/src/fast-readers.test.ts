// Each zod-free reader of fast-readers.ts against the core schema it stands in for: on generated values around
// the format (valid ones, each field wrong in the ways a hand edit gets it wrong, unknown members, values of
// every JSON type) the reader must accept exactly what the schema accepts, and read it to the same value.
import fc from "fast-check";
import { describe, it } from "vitest";
import {
  approvalsFileSchema,
  ciSchema,
  fileStoreBodySchema,
  keystoreStateSchema,
  loginRecordSchema,
  projectRegistrySchema,
  projectVaultSchema,
  providerAnswerSchema,
  syncStateSchema,
  userRegistrySchema,
  vaultDocumentSchema,
  vaultSyncSchema,
  type Checked,
} from "@latchkey/core";
import {
  readApprovalsFile,
  readCiSettings,
  readFileStoreBody,
  readKeystoreState,
  readLoginRecord,
  readProjectVault,
  readProviderAnswer,
  readRegistryEntry,
  readSyncState,
  readVaultDocument,
  readVaultSync,
} from "./fast-readers.js";
import { expectReaderAgrees } from "../../core/test/support/reader-parity.js";

type Schema = Parameters<typeof expectReaderAgrees>[0];

/** Anything a JSON or TOML parser could hand over, small. */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.date({ noInvalidDate: true }),
  fc.constantFrom(null, true, 0, -1, 1.5, "", [], {}),
);

/**
 * Objects with all or any of `fields` (each from its pool), sometimes a member outside them (`__proto__` among
 * them), and now and then any value at all in place of the object.
 */
function around(fields: Record<string, fc.Arbitrary<unknown>>, extra: readonly string[] = ["extra"]) {
  const objects = fc
    .tuple(
      fc.oneof(fc.record(fields), fc.record(fields, { requiredKeys: [] })),
      fc.oneof(
        { arbitrary: fc.constant(null), weight: 4 },
        { arbitrary: fc.tuple(fc.constantFrom(...extra, "__proto__"), anyValue), weight: 1 },
      ),
    )
    // defineProperty, as JSON.parse makes them: a `__proto__` member is then an own member like any other.
    .map(([record, more]) =>
      more === null
        ? { ...record }
        : Object.defineProperty({ ...record }, more[0], { value: more[1], enumerable: true, writable: true }),
    );
  return fc.oneof({ arbitrary: objects, weight: 8 }, { arbitrary: anyValue, weight: 1 });
}

/** The first pool (valid values) most of the time, the others (wrong ones) less, any value now and then. */
function mostly(valid: fc.Arbitrary<unknown>, ...wrong: fc.Arbitrary<unknown>[]): fc.Arbitrary<unknown> {
  return fc.oneof({ arbitrary: valid, weight: 8 }, ...wrong.map((arbitrary) => ({ arbitrary, weight: 2 })), {
    arbitrary: anyValue,
    weight: 1,
  });
}

function agrees<T>(
  schema: Schema,
  read: (value: unknown) => Checked<T>,
  values: fc.Arbitrary<unknown>,
): void {
  expectReaderAgrees(schema, read, values, { runs: 1500, atLeast: 100 });
}

const variableName = mostly(
  fc.constantFrom("EXAMPLE_NPM_TOKEN", "_X", "a1", "NPM_TOKEN"),
  fc.constantFrom("1X", "A-B", "", "X Y", "Ä"),
  fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/),
);
const argv = mostly(
  fc.array(fc.constantFrom("/usr/bin/issuer", "--audience", "npm", "x y"), { minLength: 1, maxLength: 3 }),
  fc.constantFrom([], [""], ["a\u0000b"], ["ok", 1], "issuer"),
);
const kind = mostly(
  fc.constantFrom("npm", "github", "gitlab", "custom"),
  fc.constantFrom("GitLab", "other", ""),
);

describe("the hot commands' readers accept what core's schemas accept, and read it alike", () => {
  it("latchkey.json's vault", () => {
    agrees(
      projectVaultSchema,
      readProjectVault,
      mostly(
        fc.uuid(),
        fc.uuid().map((id) => id.toUpperCase()),
        fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,20}$/),
        fc.constantFrom("", "..", "a/b", "a\\b", "~x", "C:x", ".x", "CON", "a b", "é", "x".repeat(129)),
      ),
    );
  });

  it("latchkey.json's vaultSync", () => {
    agrees(
      vaultSyncSchema,
      readVaultSync,
      around(
        {
          personalVersion: mostly(
            fc.integer({ min: 0, max: 1000 }),
            fc.constantFrom(-1, 1.5, "3", -0, Number.MAX_SAFE_INTEGER + 1, null, true),
          ),
          orgVersions: mostly(
            fc.dictionary(
              fc.oneof(
                { arbitrary: fc.constantFrom("acme", "team-2", "0", "a".repeat(40)), weight: 8 },
                { arbitrary: fc.constantFrom("Acme", "-x", "a".repeat(41), "", "__proto__"), weight: 2 },
              ),
              mostly(fc.integer({ min: 0, max: 1000 }), fc.constantFrom(-1, 1.5, "3", null)),
              { maxKeys: 3 },
            ),
            fc.constantFrom([], "acme", null),
          ),
        },
        ["sharedVersion"],
      ),
    );
  });

  it("a registry of config.toml", () => {
    agrees(
      userRegistrySchema,
      (value) => readRegistryEntry(value, "user"),
      around({ tokenEnv: variableName, provider: argv, kind }, ["token", "Provider", "url"]),
    );
  });

  it("a registry of latchkey.json", () => {
    agrees(
      projectRegistrySchema,
      (value) => readRegistryEntry(value, "project"),
      around({ tokenEnv: variableName, provider: argv }, ["kind", "token"]),
    );
  });

  it("config.toml's [ci]", () => {
    agrees(
      ciSchema,
      readCiSettings,
      around({ allow_project_credentials: mostly(fc.boolean(), fc.constantFrom("true", 1, null)) }, [
        "other",
        "allow_project_providers",
      ]),
    );
  });

  it("approvals.json", () => {
    const hash = mostly(
      fc.stringMatching(/^[0-9a-f]{64}$/),
      fc.constantFrom("", "abc", "A".repeat(64), "g".repeat(64)),
    );
    const project = mostly(fc.constantFrom("/work/app", "C:\\app"), fc.constant(7));
    const v1 = around({ project, argvSha256: hash });
    const v2 = around(
      {
        project,
        kind: mostly(fc.constantFrom("provider", "tokenEnv", "vault"), fc.constantFrom("Vault", "x")),
        sha256: hash,
        declaration: anyValue,
        approvedAt: anyValue,
      },
      ["note"],
    );
    const file = (version: number, entry: fc.Arbitrary<unknown>) =>
      around(
        {
          version: mostly(fc.constant(version), fc.constantFrom(3, "2", 0)),
          approvals: mostly(fc.array(entry, { maxLength: 3 }), fc.constantFrom({}, "x")),
        },
        ["comment"],
      );
    agrees(
      approvalsFileSchema,
      readApprovalsFile,
      fc.oneof(file(1, v1), file(2, v2), file(2, fc.oneof(v1, v2))),
    );
  });

  it("keystore.json", () => {
    agrees(
      keystoreStateSchema,
      readKeystoreState,
      around({
        backend: mostly(fc.constant("keyring"), fc.constantFrom("file", "Keyring")),
        since: anyValue,
      }),
    );
  });

  const strings = fc.dictionary(
    fc.constantFrom("A", "B_2", "registry://x/", "", "__proto__", "constructor"),
    mostly(fc.string({ maxLength: 4 }), fc.constantFrom(1, null)),
    { maxKeys: 3 },
  );

  it("the file store's body", () => {
    agrees(fileStoreBodySchema, readFileStoreBody, around({ entries: mostly(strings) }, ["version"]));
  });

  it("a vault document", () => {
    agrees(
      vaultDocumentSchema,
      readVaultDocument,
      mostly(
        fc.dictionary(fc.constantFrom("default", "prod", "", "__proto__", "toString"), mostly(strings), {
          maxKeys: 3,
        }),
      ),
    );
  });

  it("sync/state.json", () => {
    const version = mostly(
      fc.integer({ min: 0, max: 1000 }),
      fc.constantFrom(1.5, "3", -0, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 1, null),
    );
    const entry = around(
      {
        server: mostly(fc.constantFrom("https://lk.example", "http://127.0.0.1:8787"), fc.constant(1)),
        userId: mostly(fc.constantFrom("u1", ""), fc.constant(null)),
        vaultId: mostly(fc.uuid(), fc.constant(7)),
        org: mostly(fc.constantFrom("acme", "team-2"), fc.constantFrom(1, null, ["acme"])),
        highestVersion: version,
        syncedVersion: version,
        highestKeyVersion: version,
        syncedAt: mostly(
          fc.constantFrom("2030-01-01T00:00:00.000Z", "2030-01-01T00:00:00+02:00"),
          fc.constantFrom("2030-01-01", "2030-02-30T00:00:00Z", "yesterday", 1893456000000, null),
        ),
      },
      ["note"],
    );
    agrees(
      syncStateSchema,
      readSyncState,
      around(
        {
          format: mostly(fc.constant(1), fc.constantFrom(2, "1")),
          entries: mostly(fc.array(entry, { maxLength: 3 }), fc.constantFrom({}, "x")),
        },
        ["comment"],
      ),
    );
  });

  it("a registries.json entry", () => {
    agrees(
      loginRecordSchema,
      readLoginRecord,
      around({ url: mostly(fc.constantFrom("https://npm.example.com/", "")) }, ["when"]),
    );
  });

  it("a credential provider's answer, in either shape", () => {
    const token = mostly(
      fc.string({ minLength: 1, maxLength: 8 }),
      fc.constantFrom("", "a\nb", "a\u007fb", "x".repeat(16 * 1024), "x".repeat(16 * 1024 + 1)),
    );
    const expiresAt = mostly(
      fc.constantFrom(null, "2030-01-01T00:00:00Z", "2030-01-01T00:00:00.5+02:00", "2030-02-30T00:00:00Z"),
      fc.constantFrom("2030-01-01", "2030-01-01T00:00:00", 1893456000, 0, -1, 1e11, 1e11 - 1, 1.5),
    );
    const extra = ["_auth", "username", "_password", "extra", "token", "_authToken"];
    agrees(
      providerAnswerSchema,
      readProviderAnswer,
      fc.oneof(around({ token, expiresAt }, extra), around({ _authToken: token, expiresAt }, extra)),
    );
  });
});

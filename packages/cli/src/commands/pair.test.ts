import { describe, expect, it } from "vitest";
import type { SharingKeyAdoption } from "../sharing/sharing-key.js";
import type { AdoptOutcome } from "../sync/rotate.js";
import { approveSummary, pairSummary } from "./pair.js";

const SERVER = "https://latchkey.example.com";

function adoption(extra: Partial<AdoptOutcome>): AdoptOutcome {
  return {
    how: "stored",
    rotated: true,
    resumed: false,
    rewrapped: [],
    unreadable: [],
    serverUpdated: [],
    serverUnopened: [],
    ...extra,
  };
}

const pairedWith = (extra: Partial<AdoptOutcome>, sharingKey: SharingKeyAdoption = { how: "none" }) =>
  pairSummary({ pairingId: "p", label: "new laptop", server: SERVER, adoption: adoption(extra), sharingKey });
const FINGERPRINT = "0123456789abcdef".repeat(4);

describe("pairSummary", () => {
  it("a machine that had no key: paired, and where pull works", () => {
    expect(pairedWith({})).toBe(
      `Paired: this machine now holds the wrapping key of your other machine, so it opens the vaults that machine pushed to ${SERVER}.\n` +
        "Run `latchkey env pull` in a project to fetch its vault.",
    );
  });

  it("a machine with vaults of its own: how many keys were re-wrapped and server copies updated", () => {
    expect(pairedWith({ how: "adopted", rewrapped: ["v1"] })).toContain(
      "This machine's own 1 vault key was re-wrapped under it.",
    );
    expect(
      pairedWith({ how: "adopted", rewrapped: ["v1", "v2"], serverUpdated: [`${SERVER} v1`] }),
    ).toContain("This machine's own 2 vault keys were re-wrapped under it, and 1 server copy updated.");
    expect(pairedWith({ how: "adopted", rewrapped: ["v1"], unreadable: ["v9"] })).toContain(
      "Left as they were (no key of this machine opens them): v9.",
    );
    expect(pairedWith({ how: "adopted", serverUnopened: [`${SERVER} v8`] })).toContain(
      `left as they are (held by the wrapping key of a machine other than the one you paired with): ${SERVER} v8.`,
    );
  });

  it("the key this machine already had: says nothing changed", () => {
    expect(pairedWith({ how: "unchanged", rotated: false })).toMatch(/^Already paired: .*nothing changed\./);
  });

  it("says what became of the sharing key, naming it by its short fingerprint only", () => {
    const said = (how: Exclude<SharingKeyAdoption["how"], "none">) =>
      pairedWith({}, { how, fingerprint: FINGERPRINT }).split("\n")[1];
    for (const how of ["stored", "replaced"] as const) {
      expect(said(how)).toBe(
        "It holds your account's sharing key now (0123456789abcdef…), so it opens the organisation vaults shared with you.",
      );
    }
    expect(said("unchanged")).toBe("It already held your account's sharing key (0123456789abcdef…).");
    expect(said("kept")).toBe(
      `It kept its own sharing key (0123456789abcdef…), the one your account has on ${SERVER}; the other machine's was not stored.`,
    );
    expect(said("ignored")).toContain(
      `is the one registered for your account on ${SERVER}; it kept its own.`,
    );
    expect(pairedWith({})).not.toContain("sharing key");
  });
});

describe("approveSummary", () => {
  const approved = (vaults: string[], sharingKey = false) =>
    approveSummary({
      pairingId: "p",
      label: "new laptop",
      server: SERVER,
      fingerprint: "f",
      vaults,
      sharingKey,
    });

  it("counts the vaults this machine synced with that server", () => {
    expect(approved(["a", "b"])).toContain(
      `Approved: "new laptop" receives this machine's wrapping key once and can then pull 2 vaults this machine synced with ${SERVER}.`,
    );
    expect(approved(["a"])).toContain("can then pull 1 vault this machine synced");
  });

  it("with none synced yet, speaks of the vaults it pushes", () => {
    expect(approved([])).toContain("can then pull the vaults this machine pushes.");
  });

  it("names the sharing key when it went too, and the organisation vaults it opens", () => {
    expect(approved(["a"], true)).toContain(
      `Approved: "new laptop" receives this machine's wrapping key and sharing key once and can then pull 1 vault this machine synced with ${SERVER}, and the organisation vaults shared with you.`,
    );
  });
});

// The behaviour every keystore backend must share. Imported by each backend's test file, so the keychain, the
// file store and the memory store are held to the same contract.
import { describe, expect, it } from "vitest";
import type { Keystore } from "./types.js";

/** Registers the contract tests against a fresh keystore from `make` (called once per test). */
export function keystoreContract(name: string, make: () => Promise<Keystore>): void {
  describe(`keystore contract: ${name}`, () => {
    it("returns null for a missing account and deletes nothing", async () => {
      const ks = await make();
      expect(await ks.get("registry://missing.example/")).toBeNull();
      expect(await ks.delete("registry://missing.example/")).toBe(false);
    });

    it("sets, gets, overwrites and deletes", async () => {
      const ks = await make();
      await ks.set("registry://npm.example/", "first-value");
      expect(await ks.get("registry://npm.example/")).toBe("first-value");
      await ks.set("registry://npm.example/", "second-value");
      expect(await ks.get("registry://npm.example/")).toBe("second-value");
      expect(await ks.delete("registry://npm.example/")).toBe(true);
      expect(await ks.get("registry://npm.example/")).toBeNull();
      expect(await ks.delete("registry://npm.example/")).toBe(false);
    });

    it("lists accounts sorted, and only its own", async () => {
      const ks = await make();
      await ks.set("b-account", "2");
      await ks.set("a-account", "1");
      await ks.set("c-account", "3");
      const listed = await ks.list();
      expect(listed.filter((a) => a.endsWith("-account"))).toEqual(["a-account", "b-account", "c-account"]);
      await ks.delete("b-account");
      expect((await ks.list()).filter((a) => a.endsWith("-account"))).toEqual(["a-account", "c-account"]);
    });

    it("keeps accounts apart", async () => {
      const ks = await make();
      await ks.set("sso:https://a.example", "A");
      await ks.set("sso:https://b.example", "B");
      expect(await ks.get("sso:https://a.example")).toBe("A");
      expect(await ks.get("sso:https://b.example")).toBe("B");
    });

    it("round-trips unicode accounts and values exactly", async () => {
      const ks = await make();
      const account = "vault-key:ünïcødé-帳號-🔑";
      const value = "pässwörd — 秘密 — 🗝️ — \u00a0tab\there \"quotes\" 'and' \\ backslash";
      await ks.set(account, value);
      expect(await ks.get(account)).toBe(value);
      expect(await ks.list()).toContain(account);
    });

    it("round-trips a large value (64 KiB)", async () => {
      const ks = await make();
      const value = Array.from({ length: 65536 }, (_, i) => String.fromCharCode(33 + (i % 90))).join("");
      await ks.set("large", value);
      expect(await ks.get("large")).toBe(value);
    });

    it("round-trips an empty value", async () => {
      const ks = await make();
      await ks.set("empty", "");
      expect(await ks.get("empty")).toBe("");
    });
  });
}

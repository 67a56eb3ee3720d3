import { describe, expect, it } from "vitest";
import { DEFAULT_CI_ISSUERS, parseCiIssuers } from "./issuers.js";

const refusal = (value: string) => {
  try {
    parseCiIssuers({ CI_OIDC_ISSUERS: value });
  } catch (err) {
    return err as { code: string; message: string; hint: string };
  }
  throw new Error(`CI_OIDC_ISSUERS=${value} was accepted`);
};

describe("parseCiIssuers", () => {
  it("trusts GitHub Actions and GitLab.com when CI_OIDC_ISSUERS is unset or empty", () => {
    const defaults = [
      { provider: "github", url: "https://token.actions.githubusercontent.com" },
      { provider: "gitlab", url: "https://gitlab.com" },
    ];
    expect(parseCiIssuers({})).toEqual(defaults);
    expect(parseCiIssuers({ CI_OIDC_ISSUERS: "" })).toEqual(defaults);
    expect(parseCiIssuers({ CI_OIDC_ISSUERS: DEFAULT_CI_ISSUERS })).toEqual(defaults);
  });

  it("replaces the defaults with exactly the issuers listed, so GitHub can be left out", () => {
    expect(parseCiIssuers({ CI_OIDC_ISSUERS: "gitlab=https://gitlab.example.com" })).toEqual([
      { provider: "gitlab", url: "https://gitlab.example.com" },
    ]);
    expect(
      parseCiIssuers({
        CI_OIDC_ISSUERS:
          " gitlab=https://gitlab.com , gitlab=https://git.example.org/gitlab,github=https://token.actions.githubusercontent.com/acme",
      }),
    ).toEqual([
      { provider: "gitlab", url: "https://gitlab.com" },
      { provider: "gitlab", url: "https://git.example.org/gitlab" },
      { provider: "github", url: "https://token.actions.githubusercontent.com/acme" },
    ]);
    expect(parseCiIssuers({ CI_OIDC_ISSUERS: "none" })).toEqual([]);
  });

  it("keeps the configured string as the exact iss: no slash added or taken away", () => {
    expect(parseCiIssuers({ CI_OIDC_ISSUERS: "gitlab=https://gitlab.example.com/" })).toEqual([
      { provider: "gitlab", url: "https://gitlab.example.com/" },
    ]);
    expect(parseCiIssuers({ CI_OIDC_ISSUERS: "gitlab=https://git.example.org/gitlab/" })).toEqual([
      { provider: "gitlab", url: "https://git.example.org/gitlab/" },
    ]);
  });

  it("allows plain http on loopback hosts only (how tests add their issuer)", () => {
    expect(
      parseCiIssuers({
        CI_OIDC_ISSUERS: "github=http://127.0.0.1:4555,gitlab=http://localhost:4556,gitlab=http://[::1]:4557",
      }),
    ).toEqual([
      { provider: "github", url: "http://127.0.0.1:4555" },
      { provider: "gitlab", url: "http://localhost:4556" },
      { provider: "gitlab", url: "http://[::1]:4557" },
    ]);
    for (const url of ["http://gitlab.example.com", "http://10.0.0.5:8080", "http://127.0.0.1.example.com"]) {
      const err = refusal(`gitlab=${url}`);
      expect(err.code).toBe("LK_CONFIG_INVALID");
      expect(err.message).toContain("must be an https URL");
    }
  });

  it.each([
    ["github", "entry 1 is not PROVIDER=URL"],
    ["github=", "entry 1 is not PROVIDER=URL"],
    ["gitlab=https://gitlab.com,", "entry 2 is empty"],
    ["bitbucket=https://bitbucket.org", 'entry 1 names the provider "bitbucket"'],
    ["GitHub=https://token.actions.githubusercontent.com", 'names the provider "GitHub"'],
    ["gitlab=gitlab.com", "entry 1 (gitlab=…) does not hold a URL"],
    ["gitlab=ftp://gitlab.com", "must be an https URL"],
    ["gitlab=https://gitlab.com?x=1", "must not have a query or fragment"],
    ["gitlab=https://gitlab.com#top", "must not have a query or fragment"],
    ["gitlab=https://gitlab.com?", "must not have a query or fragment"],
    ["gitlab=https://GitLab.com", "did you mean https://gitlab.com?"],
    ["gitlab=https://gitlab.com:443", "did you mean https://gitlab.com?"],
    ["gitlab=https://gitlab.com/a/../b", "did you mean https://gitlab.com/b?"],
    ["gitlab=https://gitlab.com,gitlab=https://gitlab.com", "names https://gitlab.com twice"],
    ["github=https://gitlab.com,gitlab=https://gitlab.com", "names https://gitlab.com twice"],
  ])("refuses CI_OIDC_ISSUERS=%s, naming the entry", (value, says) => {
    const err = refusal(value);
    expect(err.code).toBe("LK_CONFIG_INVALID");
    expect(err.message).toContain(says);
    expect(err.hint).toContain("PROVIDER=URL");
  });

  it("never quotes a password in an issuer URL", () => {
    for (const value of [
      "gitlab=https://root:hunter2secret@gitlab.example.com",
      "bogus=https://root:hunter2secret@gitlab.example.com",
      "gitlab=https://root:hunter2secret@gitlab.example.com:99999",
    ]) {
      const err = refusal(value);
      expect(err.code).toBe("LK_CONFIG_INVALID");
      expect(`${err.message} ${err.hint}`).not.toContain("hunter2secret");
    }
  });
});

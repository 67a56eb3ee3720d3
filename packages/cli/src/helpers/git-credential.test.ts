import { isLatchkeyError, type LatchkeyError } from "@latchkey/core";
import { describe, expect, it } from "vitest";
import { createMemoryKeystore } from "../keystore/memory.js";
import type { Keystore } from "../keystore/types.js";
import {
  canonicalHost,
  gitAccount,
  gitCredentialErase,
  gitCredentialGet,
  gitCredentialStore,
  parseGitCredentialInput,
  parseStoredCredential,
  type GitCredentialRequest,
} from "./git-credential.js";

const bytes = (text: string) => new TextEncoder().encode(text);
const parse = (text: string) => parseGitCredentialInput(bytes(text));

function rejection(text: string | Uint8Array): LatchkeyError {
  try {
    parseGitCredentialInput(typeof text === "string" ? bytes(text) : text);
  } catch (error) {
    if (isLatchkeyError(error, "LK_HELPER_INPUT_INVALID")) return error;
    throw error;
  }
  throw new Error(`accepted: ${JSON.stringify(text)}`);
}

const noClock = () => {
  throw new Error("Unexpected call to clock.now");
};

describe("parseGitCredentialInput", () => {
  it("reads what git sends, with or without the closing blank line", () => {
    const expected = { protocol: "https", host: "git.example.com", username: "me", ephemeral: false };
    expect(parse("protocol=https\nhost=git.example.com\nusername=me\n")).toEqual(expected);
    expect(parse("protocol=https\nhost=git.example.com\nusername=me\n\n")).toEqual(expected);
    expect(parse("protocol=https\nhost=git.example.com\nusername=me")).toEqual(expected);
  });

  it("keeps passwords byte for byte: spaces, `=`, tabs, Unicode", () => {
    const password = " p=a\tss wörd= ";
    expect(parse(`protocol=https\nhost=h.example\nusername=u\npassword=${password}\n`).password).toBe(
      password,
    );
  });

  it("ignores multi-valued and unknown attributes of newer gits (capability[], wwwauth[], state[], authtype)", () => {
    const input =
      "capability[]=authtype\ncapability[]=state\nprotocol=https\nhost=git.example.com\n" +
      'wwwauth[]=Basic realm="git"\nwwwauth[]=Bearer\nstate[]=x:1\nauthtype=Basic\nfuture_attribute=1\n';
    expect(parse(input)).toEqual({ protocol: "https", host: "git.example.com", ephemeral: false });
  });

  it("lower-cases the host name, keeps the port as given, and reads path, expiry, refresh token and ephemeral", () => {
    expect(
      parse(
        "protocol=http\nhost=Git.Example.COM:8080\npath=org/repo.git\npassword_expiry_utc=1700000000\n" +
          "oauth_refresh_token=r\nephemeral=true\n",
      ),
    ).toEqual({
      protocol: "http",
      host: "git.example.com:8080",
      path: "org/repo.git",
      passwordExpiryUtc: "1700000000",
      oauthRefreshToken: "r",
      ephemeral: true,
    });
  });

  it.each([
    ["CRLF line endings", "protocol=https\r\nhost=git.example.com\r\n"],
    ["a CR inside a value", "protocol=https\nhost=git.example.com\npassword=a\rb\n"],
    ["a NUL inside a value", "protocol=https\nhost=git.example.com\0evil.example\n"],
    ["a line without =", "protocol=https\nhost=git.example.com\nhunter2\n"],
    ["an empty attribute name", "protocol=https\nhost=git.example.com\n=x\n"],
    ["a malformed attribute name", "protocol=https\nhost=git.example.com\nuser name=x\n"],
    ["a repeated host", "protocol=https\nhost=git.example.com\nhost=evil.example\n"],
    ["a repeated protocol", "protocol=https\nprotocol=http\nhost=git.example.com\n"],
    ["a repeated password", "protocol=https\nhost=git.example.com\npassword=a\npassword=b\n"],
    ["a repeated path", "protocol=https\nhost=h.example\npath=a\npath=b\n"],
    ["a repeated unknown attribute", "protocol=https\nhost=h.example\nx=1\nx=2\n"],
    ["text after the blank line", "protocol=https\nhost=git.example.com\n\nhost=evil.example\n"],
    ["two blank lines", "protocol=https\nhost=git.example.com\n\n\n"],
    ["no protocol", "host=git.example.com\n"],
    ["no host", "protocol=https\n"],
    ["an empty host", "protocol=https\nhost=\n"],
    ["an empty protocol", "protocol=\nhost=git.example.com\n"],
    ["an unknown protocol", "protocol=ftp\nhost=git.example.com\n"],
    ["an upper-case protocol", "protocol=HTTPS\nhost=git.example.com\n"],
    ["smtp (git send-email)", "protocol=smtp\nhost=mail.example.com\n"],
    ["cert (no host)", "protocol=cert\nhost=\npath=/home/me/cert.p12\n"],
    ["userinfo in the host", "protocol=https\nhost=me@git.example.com\n"],
    ["a path in the host", "protocol=https\nhost=git.example.com/evil\n"],
    ["a percent-encoded host", "protocol=https\nhost=git.ex%61mple.com\n"],
    ["a Unicode host", "protocol=https\nhost=bücher.example\n"],
    ["a full-width host", "protocol=https\nhost=ｇit.example.com\n"],
    ["a shortened IPv4 host", "protocol=https\nhost=127.1\n"],
    ["an octal IPv4 host", "protocol=https\nhost=0177.0.0.1\n"],
    ["a non-canonical IPv6 host", "protocol=https\nhost=[0:0::1]\n"],
    ["a port with a leading zero", "protocol=https\nhost=git.example.com:0443\n"],
    ["port 0", "protocol=https\nhost=git.example.com:0\n"],
    ["a port above 65535", "protocol=https\nhost=git.example.com:65536\n"],
    ["an empty port", "protocol=https\nhost=git.example.com:\n"],
    ["two ports", "protocol=https\nhost=git.example.com:1:2\n"],
    ["a space in the host", "protocol=https\nhost=git.example.com \n"],
    ["a path with ..", "protocol=https\nhost=h.example\npath=org/../other.git\n"],
    ["a path with .", "protocol=https\nhost=h.example\npath=./repo.git\n"],
    ["a path with a leading slash", "protocol=https\nhost=h.example\npath=/repo.git\n"],
    ["a path with a trailing slash", "protocol=https\nhost=h.example\npath=repo/\n"],
    ["an empty path", "protocol=https\nhost=h.example\npath=\n"],
    ["a control character in the path", "protocol=https\nhost=h.example\npath=a\u001bb\n"],
    ["a control character in the username", "protocol=https\nhost=h.example\nusername=a\u0007\n"],
    ["a malformed expiry", "protocol=https\nhost=h.example\npassword_expiry_utc=soon\n"],
    ["a malformed ephemeral", "protocol=https\nhost=h.example\nephemeral=maybe\n"],
  ])("rejects %s", (_name, input) => {
    expect(rejection(input).exitCode).toBe(2);
  });

  it("rejects invalid UTF-8, a byte-order mark and over-long lines", () => {
    rejection(new Uint8Array([...bytes("protocol=https\nhost=h.example\nusername="), 0xff, 0x0a]));
    rejection("\ufeffprotocol=https\nhost=h.example\n");
    rejection(`protocol=https\nhost=h.example\npassword=${"x".repeat(65535)}\n`);
    expect(parse(`protocol=https\nhost=h.example\npassword=${"x".repeat(65525)}\n`).password).toHaveLength(
      65525,
    );
  });

  it("never puts a value from the input into its message", () => {
    const secret = "ghp_CANARYCANARYCANARY";
    const inputs = [
      `protocol=https\nhost=h.example\npassword=${secret}\npassword=${secret}\n`,
      `protocol=https\nhost=h.example\n${secret}\n`,
      `protocol=https\nhost=h.example\n${secret}=1\n${secret}=2\n`,
      `protocol=https\nhost=${secret}@h.example\n`,
      `url=https://u:${secret}@h.example/\nhost=other.example\n`,
      `protocol=https\nhost=h.example\npassword=${secret}\r\n`,
    ];
    for (const input of inputs) {
      const error = rejection(input);
      expect(`${error.message} ${error.hint}`).not.toContain(secret);
      expect(`${error.message} ${error.hint}`).not.toContain("CANARY");
    }
  });
});

describe("url=", () => {
  it("stands for its parts, like git's own reading of it", () => {
    expect(parse("url=https://me:p%40ss@Git.Example.com:8443/org/repo.git/\n")).toEqual({
      protocol: "https",
      host: "git.example.com:8443",
      path: "org/repo.git",
      username: "me",
      password: "p@ss",
      ephemeral: false,
    });
    expect(parse("url=http://127.0.0.1:8080\n")).toEqual({
      protocol: "http",
      host: "127.0.0.1:8080",
      ephemeral: false,
    });
  });

  it("keeps a default port that was written out: git treats host and host:443 as different", () => {
    expect(parse("url=https://git.example.com:443/\n").host).toBe("git.example.com:443");
  });

  it("may repeat explicit attributes when it agrees with them", () => {
    expect(
      parse("protocol=https\nhost=git.example.com\nurl=https://GIT.example.com/\nusername=me\n"),
    ).toEqual({
      protocol: "https",
      host: "git.example.com",
      username: "me",
      ephemeral: false,
    });
  });

  it("reads userinfo the way both git and WHATWG do: the host is after the @", () => {
    expect(parse("url=https://git.example.com@evil.example/\n")).toMatchObject({
      host: "evil.example",
      username: "git.example.com",
    });
    expect(parse("url=https://git.example.com:443@evil.example/\n")).toMatchObject({
      host: "evil.example",
      username: "git.example.com",
      password: "443",
    });
  });

  it.each([
    ["a host that disagrees with host=", "protocol=https\nhost=git.example.com\nurl=https://evil.example/\n"],
    ["a userinfo trick against host=", "host=git.example.com\nurl=https://git.example.com@evil.example/\n"],
    ["a protocol that disagrees", "protocol=https\nurl=http://git.example.com/\n"],
    ["a port that disagrees", "host=git.example.com\nurl=https://git.example.com:8443/\n"],
    ["a path that disagrees", "path=a.git\nurl=https://git.example.com/b.git\n"],
    ["a username that disagrees", "username=a\nurl=https://b@git.example.com/\n"],
    ["two @", "url=https://a@b@git.example.com/\n"],
    ["an empty userinfo", "url=https://@git.example.com/\n"],
    ["a backslash (a slash to WHATWG, not to git)", "url=https://evil.example\\@git.example.com/\n"],
    ["a tab (WHATWG strips it)", "url=https://git.exa\tmple.com/\n"],
    ["a space", "url=https://git.example.com /\n"],
    ["a percent-encoded host", "url=https://git.ex%61mple.com/\n"],
    ["a percent-encoded @ in the host", "url=https://evil.example%40git.example.com/\n"],
    ["an encoded newline in the password", "url=https://u:a%0Aprotocol=http@git.example.com/\n"],
    ["an encoded newline in the username", "url=https://a%0Ahost=evil.example@git.example.com/\n"],
    ["an encoded newline in the path", "url=https://git.example.com/a%0Ahost=evil.example\n"],
    ["an encoded CR", "url=https://u:a%0D@git.example.com/\n"],
    ["an encoded NUL", "url=https://u:a%00@git.example.com/\n"],
    ["a malformed percent-encoding", "url=https://u:%zz@git.example.com/\n"],
    ["a query", "url=https://git.example.com/?x=1\n"],
    ["a fragment", "url=https://git.example.com/#x\n"],
    ["dot segments", "url=https://git.example.com/org/../repo.git\n"],
    ["encoded dot segments", "url=https://git.example.com/org/%2e%2e/repo.git\n"],
    ["no scheme", "url=git.example.com/repo.git\n"],
    ["scheme-relative", "url=//git.example.com/\n"],
    ["an unknown scheme", "url=ssh://git.example.com/\n"],
    ["an upper-case scheme", "url=HTTPS://git.example.com/\n"],
    ["a single slash after the scheme", "url=https:/git.example.com/\n"],
    ["no host", "url=https:///repo.git\n"],
    ["a Unicode host", "url=https://bücher.example/\n"],
    ["a shortened IPv4 host", "url=http://127.1/\n"],
    ["a leading-zero port", "url=https://git.example.com:08443/\n"],
    ["two url lines", "url=https://git.example.com/\nurl=https://git.example.com/\n"],
  ])("rejects %s", (_name, input) => {
    rejection(input);
  });
});

describe("canonicalHost", () => {
  it("accepts canonical names, IPv4, compressed IPv6 and punycode, and keeps trailing dots distinct", () => {
    expect(canonicalHost("https", "xn--bcher-kva.example")).toBe("xn--bcher-kva.example");
    expect(canonicalHost("https", "[::1]:9000")).toBe("[::1]:9000");
    expect(canonicalHost("http", "10.0.0.1:80")).toBe("10.0.0.1:80");
    expect(canonicalHost("https", "git.example.com.")).toBe("git.example.com.");
    expect(canonicalHost("https", "under_score.example")).toBe("under_score.example");
  });
});

const E = { protocol: "https" as const, host: "git.example.com" };
const stored = (username: string, password: string, extra: object = {}) =>
  JSON.stringify({ username, password, ...extra });

function request(fields: Partial<GitCredentialRequest>): GitCredentialRequest {
  return { ...E, ephemeral: false, ...fields };
}

/** A keystore that counts writes, over the memory one. */
function countingKeystore(initial: Record<string, string>): Keystore & { writes: () => number } {
  const inner = createMemoryKeystore(initial);
  let writes = 0;
  return {
    ...inner,
    set: (account, value) => {
      writes++;
      return inner.set(account, value);
    },
    writes: () => writes,
  };
}

describe("gitAccount", () => {
  it("names the keystore account by protocol, host and path", () => {
    expect(gitAccount(E)).toBe("git:https://git.example.com");
    expect(gitAccount({ protocol: "http", host: "h.example:8080", path: "org/repo.git" })).toBe(
      "git:http://h.example:8080/org/repo.git",
    );
  });
});

describe("get", () => {
  const keystore = createMemoryKeystore({
    "git:https://git.example.com": stored("me", "pw-host"),
    "git:https://git.example.com:8443": stored("me", "pw-port"),
    "git:https://paths.example/org/repo.git": stored("me", "pw-path"),
  });
  const get = (fields: Partial<GitCredentialRequest>) => gitCredentialGet(keystore, request(fields), noClock);

  it("answers an exact protocol + host match with username and password only", async () => {
    expect(await get({})).toBe("username=me\npassword=pw-host\n");
    expect(await get({ host: "git.example.com:8443" })).toBe("username=me\npassword=pw-port\n");
    expect(await get({ host: "paths.example", path: "org/repo.git" })).toBe(
      "username=me\npassword=pw-path\n",
    );
  });

  it.each([
    ["plain http", { protocol: "http" as const }],
    ["another port", { host: "git.example.com:8444" }],
    ["the default port written out", { host: "git.example.com:443" }],
    ["a port the entry does not have", { host: "git.example.com:1" }],
    ["a parent domain", { host: "example.com" }],
    ["a subdomain", { host: "evil.git.example.com" }],
    ["a longer name", { host: "git.example.com.evil.example" }],
    ["a trailing dot", { host: "git.example.com." }],
    ["a path, when the entry has none", { path: "repo.git" }],
    ["no path, when the entry has one", { host: "paths.example" }],
    ["a parent path", { host: "paths.example", path: "org" }],
    ["a longer path", { host: "paths.example", path: "org/repo.git/x" }],
    ["a path prefix", { host: "paths.example", path: "org/repo" }],
    ["another path", { host: "paths.example", path: "org/other.git" }],
    ["another user name", { username: "someone-else" }],
  ])("does not answer %s", async (_name, fields) => {
    expect(await get(fields)).toBeNull();
  });

  it("answers when git already has the same user name", async () => {
    expect(await get({ username: "me" })).toBe("username=me\npassword=pw-host\n");
  });

  it("stops answering once the password has expired, and returns expiry and refresh token before", async () => {
    const ks = createMemoryKeystore({
      "git:https://git.example.com": stored("me", "tok", {
        passwordExpiryUtc: "1000",
        oauthRefreshToken: "ref",
      }),
    });
    expect(await gitCredentialGet(ks, request({}), () => 999_999)).toBe(
      "username=me\npassword=tok\npassword_expiry_utc=1000\noauth_refresh_token=ref\n",
    );
    expect(await gitCredentialGet(ks, request({}), () => 1_000_000)).toBeNull();
  });

  it("refuses a stored entry that could inject lines into git's input", async () => {
    for (const value of [
      stored("me", "pw\nhost=evil.example"),
      stored("me\nx", "pw"),
      stored("me", ""),
      stored("me", "pw", { oauthRefreshToken: "a\nb" }),
      stored("me", "pw", { passwordExpiryUtc: 5 }),
      "not json",
      "null",
    ]) {
      const ks = createMemoryKeystore({ "git:https://git.example.com": value });
      await expect(gitCredentialGet(ks, request({}), noClock)).rejects.toMatchObject({
        code: "LK_STORE_CORRUPT",
      });
    }
    expect(() => parseStoredCredential("git:x", stored("me", "pw"))).not.toThrow();
  });
});

describe("store", () => {
  it("keeps username and password as JSON under the exact account, and does not rewrite an unchanged one", async () => {
    const ks = countingKeystore({});
    expect(await gitCredentialStore(ks, request({ username: "me", password: "pw", path: "r.git" }))).toBe(
      true,
    );
    expect(await ks.get("git:https://git.example.com/r.git")).toBe(stored("me", "pw"));
    expect(await gitCredentialStore(ks, request({ username: "me", password: "pw", path: "r.git" }))).toBe(
      false,
    );
    expect(ks.writes()).toBe(1);
    expect(await gitCredentialStore(ks, request({ username: "me", password: "new", path: "r.git" }))).toBe(
      true,
    );
    expect(await ks.get("git:https://git.example.com/r.git")).toBe(stored("me", "new"));
  });

  it("stores nothing without a user name and a password, or for an ephemeral credential", async () => {
    const ks = countingKeystore({});
    expect(await gitCredentialStore(ks, request({ username: "me" }))).toBe(false);
    expect(await gitCredentialStore(ks, request({ password: "pw" }))).toBe(false);
    expect(await gitCredentialStore(ks, request({ username: "me", password: "" }))).toBe(false);
    expect(await gitCredentialStore(ks, request({ username: "me", password: "pw", ephemeral: true }))).toBe(
      false,
    );
    expect(await ks.list()).toEqual([]);
  });
});

describe("erase", () => {
  const setup = () =>
    createMemoryKeystore({
      "git:https://git.example.com": stored("me", "right"),
      "git:https://git.example.com:8443": stored("me", "other"),
    });

  it("removes the exact entry when git rejects the password it holds", async () => {
    const ks = setup();
    expect(await gitCredentialErase(ks, request({ username: "me", password: "right" }))).toBe(true);
    expect(await ks.list()).toEqual(["git:https://git.example.com:8443"]);
  });

  it("keeps it when git rejects a different password or user (a stale rejection)", async () => {
    const ks = setup();
    expect(await gitCredentialErase(ks, request({ username: "me", password: "wrong" }))).toBe(false);
    expect(await gitCredentialErase(ks, request({ username: "me", password: "righ" }))).toBe(false);
    expect(await gitCredentialErase(ks, request({ username: "you", password: "right" }))).toBe(false);
    expect(await gitCredentialErase(ks, request({ host: "git.example.com:8444" }))).toBe(false);
    expect(await ks.list()).toHaveLength(2);
  });

  it("follows git for a rejection without a password: the entry for that exact host goes", async () => {
    const ks = setup();
    expect(await gitCredentialErase(ks, request({}))).toBe(true);
    expect(await ks.list()).toEqual(["git:https://git.example.com:8443"]);
  });
});

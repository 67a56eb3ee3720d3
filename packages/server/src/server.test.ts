import { describe, expect, it } from "vitest";
import { DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT, parseServerArgs, USAGE } from "./server.js";

const DEFAULT_CI_ISSUERS = [
  { provider: "github", url: "https://token.actions.githubusercontent.com" },
  { provider: "gitlab", url: "https://gitlab.com" },
];

describe("parseServerArgs", () => {
  it("defaults to 127.0.0.1:8787 and ./.latchkey-server on SQLite", () => {
    expect(parseServerArgs([], {}, "/srv")).toEqual({
      host: DEFAULT_HOST,
      port: DEFAULT_PORT,
      dataDir: `/srv/${DEFAULT_DATA_DIR}`,
      publicUrl: undefined,
      databaseUrl: undefined,
      logLevel: "info",
      openSignup: false,
      trustProxy: [],
      ciIssuers: DEFAULT_CI_ISSUERS,
    });
    expect(DEFAULT_HOST).toBe("127.0.0.1");
    expect(DEFAULT_PORT).toBe(8787);
  });

  it("takes --host, --port, --data-dir and the environment", () => {
    const config = parseServerArgs(
      ["--host", "0.0.0.0", "--port", "0", "--data-dir", "d"],
      {
        PUBLIC_URL: "https://latchkey.example.com/",
        DATABASE_URL: "postgres://u@h/db",
        LOG_LEVEL: "warn",
      },
      "/srv",
    );
    expect(config).toEqual({
      host: "0.0.0.0",
      port: 0,
      dataDir: "/srv/d",
      publicUrl: "https://latchkey.example.com",
      databaseUrl: "postgres://u@h/db",
      logLevel: "warn",
      openSignup: false,
      trustProxy: ["loopback", "linklocal", "uniquelocal"],
      ciIssuers: DEFAULT_CI_ISSUERS,
    });
  });

  it("trusts X-Forwarded-For only from the proxies TRUST_PROXY names, never from everyone", () => {
    const trust = (env: Record<string, string>) => parseServerArgs([], env, "/")?.trustProxy;
    expect(trust({})).toEqual([]);
    expect(trust({ PUBLIC_URL: "http://latchkey.example.com" })).toEqual([]);
    expect(trust({ PUBLIC_URL: "https://x.example", TRUST_PROXY: "none" })).toEqual([]);
    expect(trust({ TRUST_PROXY: "10.0.0.5, 192.168.0.0/16,::1,fd00::/8, loopback" })).toEqual([
      "10.0.0.5",
      "192.168.0.0/16",
      "::1",
      "fd00::/8",
      "loopback",
    ]);
    for (const bad of [
      "true",
      "*",
      "1",
      "10.0.0.5/33",
      "::1/129",
      "example.com",
      "10.0.0.5/8/1",
      "10.0.0.5,",
    ])
      expect(() => trust({ TRUST_PROXY: bad })).toThrow(
        expect.objectContaining({ code: "LK_CONFIG_INVALID" }),
      );
  });

  it("turns open sign-up on with --open-signup or LATCHKEY_OPEN_SIGNUP=1, and only then", () => {
    expect(parseServerArgs(["--open-signup"], {}, "/")?.openSignup).toBe(true);
    expect(parseServerArgs([], { LATCHKEY_OPEN_SIGNUP: "1" }, "/")?.openSignup).toBe(true);
    expect(parseServerArgs([], { LATCHKEY_OPEN_SIGNUP: "0" }, "/")?.openSignup).toBe(false);
    expect(parseServerArgs([], {}, "/")?.openSignup).toBe(false);
  });

  it("returns null for --help", () => {
    expect(parseServerArgs(["--help"], {}, "/")).toBeNull();
  });

  it("reads the trusted CI issuers from CI_OIDC_ISSUERS, which --help lists, and refuses to start on a bad entry", () => {
    expect(
      parseServerArgs([], { CI_OIDC_ISSUERS: "gitlab=https://gitlab.example.com" }, "/")?.ciIssuers,
    ).toEqual([{ provider: "gitlab", url: "https://gitlab.example.com" }]);
    expect(() => parseServerArgs([], { CI_OIDC_ISSUERS: "gitlab=http://gitlab.example.com" }, "/")).toThrow(
      expect.objectContaining({ code: "LK_CONFIG_INVALID", message: expect.stringContaining("entry 1") }),
    );
    expect(USAGE).toContain("CI_OIDC_ISSUERS");
  });

  it("lists every admin command in its help, backup and restore included", () => {
    for (const command of ["create-user", "enroll-totp", "outbox", "backup FILE", "restore FILE"]) {
      expect(USAGE).toContain(`latchkey-server admin ${command}`);
    }
  });

  it.each([["--port", "80x"], ["--port", "65536"], ["--port", "-1"], ["--nope"], ["extra"]])(
    "refuses %s %s with LK_USAGE",
    (...args) => {
      expect(() => parseServerArgs(args, {}, "/")).toThrow(expect.objectContaining({ code: "LK_USAGE" }));
    },
  );

  it.each(["ftp://x", "https://u:p@x", "https://x/?a=1", "not a url"])("refuses PUBLIC_URL=%s", (url) => {
    expect(() => parseServerArgs([], { PUBLIC_URL: url }, "/")).toThrow(
      expect.objectContaining({ code: "LK_CONFIG_INVALID" }),
    );
  });
});

describe("--metrics-listen", () => {
  const token = "m".repeat(32);

  it("is off by default and takes HOST:PORT from the flag or METRICS_LISTEN, the flag first", () => {
    expect(parseServerArgs([], {}, "/srv")?.metrics).toBeUndefined();
    expect(parseServerArgs(["--metrics-listen", "127.0.0.1:9464"], {}, "/srv")?.metrics).toEqual({
      host: "127.0.0.1",
      port: 9464,
      token: undefined,
    });
    expect(parseServerArgs([], { METRICS_LISTEN: "[::1]:0" }, "/srv")?.metrics).toEqual({
      host: "::1",
      port: 0,
      token: undefined,
    });
    expect(
      parseServerArgs(["--metrics-listen", "localhost:9000"], { METRICS_LISTEN: "127.0.0.1:9464" }, "/srv")
        ?.metrics,
    ).toEqual({ host: "localhost", port: 9000, token: undefined });
  });

  it("refuses an address other than loopback without METRICS_TOKEN, and takes it with one", () => {
    for (const address of ["0.0.0.0:9464", "10.0.0.5:9464", "[::]:9464", "metrics.example.com:9464"]) {
      expect(() => parseServerArgs(["--metrics-listen", address], {}, "/srv")).toThrow(
        expect.objectContaining({ code: "LK_CONFIG_INVALID" }),
      );
    }
    expect(
      parseServerArgs(["--metrics-listen", "0.0.0.0:9464"], { METRICS_TOKEN: token }, "/srv")?.metrics,
    ).toEqual({ host: "0.0.0.0", port: 9464, token });
  });

  it("refuses a short METRICS_TOKEN without repeating it, and a malformed address", () => {
    const short = "short-metrics-token";
    let thrown: unknown;
    try {
      parseServerArgs(["--metrics-listen", "127.0.0.1:9464"], { METRICS_TOKEN: short }, "/srv");
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toMatchObject({ code: "LK_CONFIG_INVALID" });
    expect(JSON.stringify({ ...(thrown as object), message: (thrown as Error).message })).not.toContain(
      short,
    );
    for (const address of ["9464", "127.0.0.1", "127.0.0.1:99999", "::1:9464", "[127.0.0.1]:9464", ":9464"]) {
      expect(() => parseServerArgs(["--metrics-listen", address], {}, "/srv")).toThrow(
        expect.objectContaining({ code: "LK_USAGE" }),
      );
    }
  });
});

describe("DATABASE_POOL_MAX", () => {
  it("is unset by default and takes 1 to 100 connections", () => {
    expect(parseServerArgs([], {}, "/srv")?.databasePoolMax).toBeUndefined();
    expect(parseServerArgs([], { DATABASE_POOL_MAX: "25" }, "/srv")?.databasePoolMax).toBe(25);
    for (const text of ["0", "101", "-1", "2.5", "ten"]) {
      expect(() => parseServerArgs([], { DATABASE_POOL_MAX: text }, "/srv")).toThrow(
        expect.objectContaining({ code: "LK_CONFIG_INVALID" }),
      );
    }
  });
});

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isLatchkeyError } from "@latchkey/core";
import {
  KNOWN_REGISTRIES,
  accountNerfDart,
  knownRegistry,
  nerfDart,
  nerfHost,
  nerfHostname,
  registryAccount,
  registryKind,
} from "./nerf-dart.js";

interface UrlParts {
  scheme: string;
  userinfo: string | undefined;
  host: string;
  port: number | undefined;
  path: string[];
  trailingSlash: boolean;
  query: string | undefined;
  fragment: string | undefined;
}

function expectInvalid(input: string): void {
  let caught: unknown;
  try {
    nerfDart(input);
  } catch (error) {
    caught = error;
  }
  expect(isLatchkeyError(caught, "LK_REGISTRY_INVALID"), `${input} → ${String(caught)}`).toBe(true);
}

describe("nerfDart", () => {
  it.each([
    ["https://registry.npmjs.org/", "//registry.npmjs.org/"],
    ["https://registry.npmjs.org", "//registry.npmjs.org/"],
    ["https://REGISTRY.NPMJS.org/", "//registry.npmjs.org/"],
    ["HTTPS://registry.npmjs.org:443/", "//registry.npmjs.org/"],
    ["http://localhost:80/", "//localhost/"],
    ["http://localhost:4873", "//localhost:4873/"],
    ["https://host:8443/npm", "//host:8443/npm/"],
    ["http://host:443/", "//host:443/"],
    ["https://host:80/", "//host:80/"],
    ["https://user:secret@npm.example.com/path/", "//npm.example.com/path/"],
    ["https://npm.example.com/path/?token=abc#frag", "//npm.example.com/path/"],
    ["https://gitlab.com/api/v4/packages/npm/", "//gitlab.com/api/v4/packages/npm/"],
    ["https://npm.example.com/a/./b/../c", "//npm.example.com/a/c/"],
    ["https://npm.example.com/Case/Path/", "//npm.example.com/Case/Path/"],
    ["http://[::1]:4873/", "//[::1]:4873/"],
    ["http://127.0.0.1:4873/", "//127.0.0.1:4873/"],
    ["  https://npm.example.com/  ", "//npm.example.com/"],
    ["//registry.npmjs.org/", "//registry.npmjs.org/"],
    ["//registry.npmjs.org", "//registry.npmjs.org/"],
    ["//Host:443/x", "//host:443/x/"],
    ["//user:pw@host:4873/x/", "//host:4873/x/"],
  ])("%s → %s", (input, expected) => {
    expect(nerfDart(input)).toBe(expected);
  });

  it.each([
    "",
    "   ",
    "registry.npmjs.org",
    "ftp://registry.npmjs.org/",
    "file:///etc/passwd",
    "git+https://host/",
    "javascript:alert(1)",
    "https://",
    "https://host:99999/",
  ])("refuses %j with LK_REGISTRY_INVALID", (input) => {
    expectInvalid(input);
  });

  it("repeats only URL-like input in its message (anything else may be a pasted token)", () => {
    const token = "npm_AbCdEf0123456789AbCdEf0123456789abcd";
    expect(() => nerfDart(token)).toThrow("Invalid registry URL: it is not a URL");
    expect(() => nerfDart("ftp://host/")).toThrow('Invalid registry URL "ftp://host/"');
    expect(() => nerfDart("https://me:hunter2secret@host:99999/")).toThrow(
      'Invalid registry URL "https://host:99999/"',
    );
  });

  it("never repeats a long or multi-line input in its message (it may be a pasted token)", () => {
    const secret = "npm_" + "x".repeat(300);
    try {
      nerfDart(secret);
      expect.unreachable();
    } catch (error) {
      expect(String((error as Error).message)).not.toContain(secret);
    }
    try {
      nerfDart("line one\nnpm_secretsecret");
      expect.unreachable();
    } catch (error) {
      expect(String((error as Error).message)).not.toContain("npm_secretsecret");
    }
  });

  const host = fc
    .tuple(
      fc.stringMatching(/^[a-zA-Z][a-zA-Z0-9-]{0,10}$/),
      fc.constantFrom("com", "org", "ORG", "example", "internal"),
    )
    .map(([name, tld]) => `${name}.${tld}`);
  const segment = fc.stringMatching(/^[A-Za-z0-9_~-]{1,8}$/);
  const registryUrl = fc.record({
    scheme: fc.constantFrom("http", "https", "HTTP", "HttpS"),
    userinfo: fc.option(fc.stringMatching(/^[a-z]{1,5}:[a-z0-9]{1,8}$/), { nil: undefined }),
    host,
    port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
    path: fc.array(segment, { maxLength: 4 }),
    trailingSlash: fc.boolean(),
    query: fc.option(fc.stringMatching(/^[a-z]{1,4}=[a-z0-9]{0,6}$/), { nil: undefined }),
    fragment: fc.option(fc.stringMatching(/^[a-z0-9]{0,6}$/), { nil: undefined }),
  });
  const render = (u: UrlParts): string =>
    `${u.scheme}://${u.userinfo === undefined ? "" : `${u.userinfo}@`}${u.host}${u.port === undefined ? "" : `:${u.port}`}` +
    `/${u.path.join("/")}${u.trailingSlash && u.path.length > 0 ? "/" : ""}` +
    `${u.query === undefined ? "" : `?${u.query}`}${u.fragment === undefined ? "" : `#${u.fragment}`}`;

  it("has the documented shape for any http(s) URL", () => {
    fc.assert(
      fc.property(registryUrl, (u) => {
        const nerf = nerfDart(render(u));
        const scheme = u.scheme.toLowerCase();
        const defaultPort = scheme === "http" ? 80 : 443;
        const port = u.port === undefined || u.port === defaultPort ? "" : `:${u.port}`;
        const path = u.path.length === 0 ? "/" : `/${u.path.join("/")}/`;
        expect(nerf).toBe(`//${u.host.toLowerCase()}${port}${path}`);
      }),
    );
  });

  it("is idempotent, ignores userinfo/query/fragment, and never keeps a scheme", () => {
    fc.assert(
      fc.property(registryUrl, (u) => {
        const nerf = nerfDart(render(u));
        expect(nerfDart(nerf)).toBe(nerf);
        expect(nerf.startsWith("//")).toBe(true);
        expect(nerf.endsWith("/")).toBe(true);
        expect(nerf).not.toMatch(/[?#@]/);
        const bare = render({ ...u, userinfo: undefined, query: undefined, fragment: undefined });
        expect(nerfDart(bare)).toBe(nerf);
      }),
    );
  });

  it("gives the same key whether or not the path ends in a slash", () => {
    fc.assert(
      fc.property(registryUrl, (u) => {
        expect(nerfDart(render({ ...u, trailingSlash: true }))).toBe(
          nerfDart(render({ ...u, trailingSlash: false })),
        );
      }),
    );
  });
});

describe("registry accounts and kinds", () => {
  it("names the keystore account after the nerf dart, and reads it back", () => {
    const nerf = nerfDart("https://npm.pkg.github.com/");
    expect(registryAccount(nerf)).toBe("registry://npm.pkg.github.com/");
    expect(accountNerfDart("registry://npm.pkg.github.com/")).toBe(nerf);
    expect(accountNerfDart("registry://npm.pkg.github.com")).toBeNull();
    expect(accountNerfDart("sso:https://issuer")).toBeNull();
    expect(accountNerfDart("registry:not a url")).toBeNull();
  });

  it("knows npmjs, GitHub Packages and GitLab (also self-managed by path), else custom", () => {
    expect(registryKind(nerfDart(KNOWN_REGISTRIES.npm))).toBe("npm");
    expect(registryKind(nerfDart(KNOWN_REGISTRIES.github))).toBe("github");
    expect(registryKind(nerfDart("https://npm.pkg.github.com/octo-org"))).toBe("github");
    expect(registryKind(nerfDart(KNOWN_REGISTRIES.gitlab))).toBe("gitlab");
    expect(registryKind(nerfDart("https://gitlab.com/api/v4/projects/123/packages/npm/"))).toBe("gitlab");
    expect(registryKind(nerfDart("https://git.example.com/api/v4/groups/7/-/packages/npm/"))).toBe("gitlab");
    expect(registryKind(nerfDart("https://example.com/gitlab/api/v4/packages/npm/"))).toBe("gitlab");
    expect(registryKind(nerfDart("https://registry.npmjs.org.evil.example/"))).toBe("custom");
    expect(registryKind(nerfDart("https://npm.example.com/"))).toBe("custom");
    expect(registryKind(nerfDart("http://127.0.0.1:4873/"))).toBe("custom");
    expect(knownRegistry("gitlab")).toBe("//gitlab.com/api/v4/packages/npm/");
  });

  it("splits host and port", () => {
    expect(nerfHost("//host:4873/x/")).toBe("host:4873");
    expect(nerfHostname("//host:4873/x/")).toBe("host");
    expect(nerfHostname("//[::1]:4873/")).toBe("[::1]");
    expect(nerfHostname("//[::1]/")).toBe("[::1]");
  });
});

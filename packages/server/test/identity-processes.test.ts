// The identity slice as operators run it, with the real `latchkey-server` bin (built by `npm run build`), on
// SQLite and PostgreSQL: `admin create-user` with the password on stdin (and its refusals), `admin enroll-totp`,
// the issuer of a server started on --port 0, and the sign-in limits holding across TWO server processes sharing
// one database: the free failures of one account from one address spread over both, then the right password is
// refused (429) on both.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CLI_CLIENT_ID } from "@latchkey/core";
import * as oidc from "openid-client";
import { afterEach, expect, it, vi } from "vitest";
import { CookieJar } from "../../../e2e/support/oidc-browser.js";
import type { DatabaseConfig } from "../src/db/index.js";
import { openDatabase } from "../src/db/index.js";
import { LIMITS } from "../src/identity/rate-limit.js";
import { describeEachDatabase } from "./databases.js";

const BIN = fileURLToPath(new URL("../bin/latchkey-server.mjs", import.meta.url));
if (!existsSync(fileURLToPath(new URL("../dist/main.mjs", import.meta.url)))) {
  throw new Error("packages/server/dist is missing: run `npm run build` first (npm test does).");
}

interface Server {
  url: string;
  child: ChildProcess;
  output: () => string;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});

function baseEnv(config: DatabaseConfig, secret: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "",
    LANG: "C.UTF-8",
    LATCHKEY_SERVER_SECRET: secret,
    ...(config.databaseUrl ? { DATABASE_URL: config.databaseUrl } : {}),
  };
}

function startServer(config: DatabaseConfig, secret: string): Promise<Server> {
  const child = spawn(process.execPath, [BIN, "--port", "0", "--data-dir", config.dataDir], {
    env: baseEnv(config, secret),
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let output = "";
  return new Promise<Server>((resolve, reject) => {
    const onData = (chunk: string) => {
      output += chunk;
      const line = output.split("\n").find((l) => l.includes('"event":"server.listening"'));
      if (line)
        resolve({ url: String((JSON.parse(line) as { url: string }).url), child, output: () => output });
    };
    child.stdout.setEncoding("utf8").on("data", onData);
    child.stderr.setEncoding("utf8").on("data", (d: string) => (output += d));
    child.on("close", (code) => reject(new Error(`server exited ${code}:\n${output}`)));
  });
}

function admin(
  config: DatabaseConfig,
  secret: string,
  args: string[],
  stdin: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, "admin", ...args, "--data-dir", config.dataDir], {
    env: baseEnv(config, secret),
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  child.stdin.end(stdin);
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

const secret = () => randomBytes(32).toString("base64url");

describeEachDatabase("identity processes", (target) => {
  it("admin create-user takes the password on stdin; refuses duplicates, bad emails and short passwords", async () => {
    const config = await target.fresh();
    const key = secret();
    const password = "stdin password for alice";
    const created = await admin(config, key, ["create-user", " Alice@Example.test"], `${password}\n`);
    expect(created).toMatchObject({ code: 0 });
    expect(created.stderr).toContain("alice@example.test");
    expect(created.stdout + created.stderr).not.toContain(password);

    // Every refusal carries its code and a hint naming the server's own commands.
    const duplicate = await admin(config, key, ["create-user", "alice@example.test"], "another password\n");
    expect(duplicate).toMatchObject({ code: 1 });
    expect(duplicate.stderr).toContain("error LK_ACCOUNT_EXISTS: An account with this email already exists.");
    expect(duplicate.stderr).toContain(
      "hint: Use another email, or `latchkey-server admin enroll-totp EMAIL`",
    );
    expect(await admin(config, key, ["create-user", "not-an-email"], "pw\n")).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("not a valid email"),
    });
    for (const short of ["", "eleven char"]) {
      expect(await admin(config, key, ["create-user", "bob@example.test"], `${short}\n`)).toMatchObject({
        code: 2,
        stderr: expect.stringContaining(
          "error LK_PASSWORD_INVALID: The password must be 12 to 1024 characters long.",
        ),
      });
    }
    expect(await admin(config, key, ["create-user"], "")).toMatchObject({ code: 2 });

    const enrolled = await admin(config, key, ["enroll-totp", "ALICE@example.test"], "");
    expect(enrolled.code).toBe(0);
    expect(enrolled.stdout).toMatch(/^otpauth:\/\/totp\/.+secret=[A-Z2-7]+.*\n$/);
    expect(enrolled.stderr).toContain("secret");
    expect(await admin(config, key, ["enroll-totp", "nobody@example.test"], "")).toMatchObject({ code: 1 });

    // What the commands wrote: an Argon2id hash (never the password), a sealed TOTP secret (never the base32).
    const database = await openDatabase(config);
    try {
      const rows = await database.db
        .withTables<{
          users: { email: string; password_hash: string; totp_secret: string; totp_enabled: number };
        }>()
        .selectFrom("users")
        .select(["email", "password_hash", "totp_secret", "totp_enabled"])
        .execute();
      expect(rows).toHaveLength(1);
      expect(rows[0]!.email).toBe("alice@example.test");
      expect(rows[0]!.password_hash).toMatch(/^\$argon2id\$/);
      expect(rows[0]!.totp_enabled).toBe(1);
      const base32 = /secret=([A-Z2-7]+)/.exec(enrolled.stdout)![1]!;
      expect(JSON.stringify(rows)).not.toContain(base32);
      expect(JSON.stringify(rows)).not.toContain(password);
    } finally {
      await database.close();
    }
  });

  it(`holds the ${LIMITS.pair.free} free failures of an account from one address across two server processes`, async () => {
    const config = await target.fresh();
    const key = secret();
    const password = "the right password";
    expect((await admin(config, key, ["create-user", "target@example.test"], `${password}\n`)).code).toBe(0);
    const [a, b] = await Promise.all([startServer(config, key), startServer(config, key)]);
    const servers = [a, b];

    // The issuer of a --port 0 server is its listening URL.
    const configA = await oidc.discovery(new URL(`${a.url}/oidc`), CLI_CLIENT_ID, undefined, oidc.None(), {
      execute: [oidc.allowInsecureRequests],
    });
    expect(configA.serverMetadata().issuer).toBe(`${a.url}/oidc`);

    // One sign-in started on A; its interaction lives in the shared database, so B serves its form posts too.
    const authUrl = oidc.buildAuthorizationUrl(configA, {
      redirect_uri: "http://127.0.0.1:49152/callback",
      scope: "openid offline_access",
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: "S256",
    });
    const jar = new CookieJar();
    const first = await fetch(authUrl, { redirect: "manual" });
    jar.store(a.url, first);
    const path = new URL(first.headers.get("location")!, a.url).pathname;
    const cookie = jar.header(a.url)!;
    const post = async (server: Server, pw: string) => {
      const res = await fetch(`${server.url}${path}/login`, {
        method: "POST",
        redirect: "manual",
        headers: { cookie, "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ email: "target@example.test", password: pw }).toString(),
      });
      await res.arrayBuffer();
      return res.status;
    };

    const wrong: string[] = [];
    const statuses: number[] = [];
    // Concurrent attempts on both processes, never more in flight than the free failures leave room for, so
    // every one is checked and fails.
    const free = LIMITS.pair.free;
    for (let i = 0; i < free; i += 4) {
      const batch = Array.from({ length: Math.min(4, free - i) }, (_, j) => {
        const pw = `wrong-password-${i + j}`;
        wrong.push(pw);
        return post(servers[(i + j) % 2]!, pw);
      });
      statuses.push(...(await Promise.all(batch)));
    }
    expect(statuses.filter((s) => s === 401)).toHaveLength(free);
    // The next attempt from this address waits, on either process, even with the right password.
    expect(await post(a, password)).toBe(429);
    expect(await post(b, password)).toBe(429);

    const database = await openDatabase(config);
    try {
      const audit = await database.db
        .selectFrom("audit_events")
        .select(["action", "metadata", "count"])
        .where("action", "in", ["auth.login_failed", "auth.rate_limited", "auth.login"])
        .execute();
      expect(audit.filter((r) => r.action === "auth.login_failed")).toHaveLength(LIMITS.pair.free);
      // Both refusals, one from each process, in one row.
      expect(audit.filter((r) => r.action === "auth.rate_limited")).toEqual([
        expect.objectContaining({ count: 2 }),
      ]);
      expect(audit.filter((r) => r.action === "auth.login")).toHaveLength(0);
      const text = JSON.stringify(audit);
      for (const pw of [password, ...wrong]) expect(text).not.toContain(pw);
    } finally {
      await database.close();
    }
    // Both processes logged the attempts as JSON, without any password.
    for (const server of servers) {
      // The log is written in batches (every 4 KiB or 100 ms), so the lines arrive a little after the answers.
      await vi.waitFor(() => expect(server.output()).toContain('"event":"auth.login_failed"'), {
        timeout: 10_000,
        interval: 50,
      });
      const out = server.output();
      for (const line of out.trim().split("\n")) JSON.parse(line);
      for (const pw of [password, ...wrong]) expect(out).not.toContain(pw);
    }
  });
});

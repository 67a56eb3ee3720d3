// Tampered sync responses through a proxy between the CLI and the real server: a flipped body byte, a removed
// signature, a signature made with another user's token, an older version replayed verbatim with its valid
// signature, the same re-signed for the new request and an old blob relabelled as the current version (both what
// a proxy that sees the bearer token could do), and a signed pull answer replayed as the acknowledgement of a
// push. Every one is refused and writes nothing locally; no local change is lost.
import { createServer, request, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createUser,
  latchkey,
  loginCli,
  newMachine,
  signAnswer,
  startLatchkeyServer,
  type LatchkeyServer,
  type Machine,
  type ProcessResult,
} from "./support/latchkey-server.js";
import { snapshot } from "./support/project.js";

const SIGNATURE = "x-latchkey-signature";
const REQUEST_ID = "x-latchkey-request-id";
const ALICE = { email: "tamper-alice@example.com", password: "alice password for tamper tests" };
const MALLORY = { email: "tamper-mallory@example.com", password: "mallory password for tamper tests" };

interface Recorded {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}
type Mode =
  | { kind: "pass" }
  | { kind: "flip" }
  | { kind: "drop-signature" }
  | { kind: "other-token" }
  | { kind: "replay"; response: Recorded }
  | { kind: "replay-resigned"; response: Recorded }
  | { kind: "relabel"; response: Recorded; version: number };
/**
 * What happens to a push: passed on; passed on with its answer withheld from the CLI (a 502 instead); or never
 * passed on, answered with a recorded answer, as it is or re-signed for the push with the victim's token.
 */
type PushMode =
  { kind: "pass" } | { kind: "withhold" } | { kind: "answer"; response: Recorded; resign: boolean };

/** The request an answer is for, as the server signs it. */
interface Asked {
  method: string;
  path: string;
  requestId: string;
}

/**
 * A transparent HTTP proxy that can rewrite answers to `GET /api/v1/vaults/<id>` (the pull) and
 * `PUT /api/v1/vaults/<id>` (the push).
 */
interface TamperProxy {
  url: string;
  mode: Mode;
  pushMode: PushMode;
  /** Pull answers are passed on to the server but kept from the CLI (a 502 instead). */
  withholdPulls: boolean;
  /** The last pull answer that went through unchanged, or was withheld. */
  lastPull: Recorded | null;
  /** Bearer tokens seen, by the email the test assigns after each login. */
  tokens: string[];
  tampered: number;
  close(): Promise<void>;
  setTarget(url: string): void;
}

const withheld = (): Recorded => ({ status: 502, headers: {}, body: Buffer.alloc(0) });

async function startProxy(): Promise<TamperProxy> {
  let target = "";
  const proxy: TamperProxy = {
    url: "",
    mode: { kind: "pass" },
    pushMode: { kind: "pass" },
    withholdPulls: false,
    lastPull: null,
    tokens: [],
    tampered: 0,
    close: () => new Promise((resolve) => server.close(() => resolve())),
    setTarget: (url) => (target = url),
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const auth = req.headers.authorization;
      const token = auth?.startsWith("Bearer ") ? auth.slice(7) : undefined;
      if (token !== undefined && !proxy.tokens.includes(token)) proxy.tokens.push(token);
      const requestId = req.headers[REQUEST_ID];
      const asked: Asked = {
        method: req.method ?? "GET",
        path: req.url ?? "/",
        requestId: typeof requestId === "string" ? requestId : "",
      };
      const send = (recorded: Recorded) => {
        const headers = { ...recorded.headers, "content-length": String(recorded.body.length) };
        delete headers["transfer-encoding"];
        res.writeHead(recorded.status, headers);
        res.end(recorded.body);
      };
      const isPush = req.method === "PUT" && /^\/api\/v1\/vaults\/[^/?]+$/.test(req.url ?? "");
      const pushMode = proxy.pushMode;
      if (isPush && pushMode.kind === "answer") {
        proxy.tampered++;
        const { response } = pushMode;
        const headers = { ...response.headers };
        if (pushMode.resign)
          headers[SIGNATURE] = signAnswer(token ?? "", asked, response.status, response.body);
        send({ ...response, headers });
        return;
      }
      const upstream = new URL(req.url ?? "/", target);
      const out = request(upstream, { method: req.method, headers: req.headers }, (answer) => {
        const body: Buffer[] = [];
        answer.on("data", (c: Buffer) => body.push(c));
        answer.on("end", () => {
          let recorded: Recorded = {
            status: answer.statusCode ?? 502,
            headers: { ...answer.headers },
            body: Buffer.concat(body),
          };
          const isPull = req.method === "GET" && /^\/api\/v1\/vaults\/[^/?]+$/.test(req.url ?? "");
          if (isPull && recorded.status === 200) {
            const mode = proxy.mode;
            if (proxy.withholdPulls) {
              proxy.lastPull = recorded;
              recorded = withheld();
            } else if (mode.kind === "pass") proxy.lastPull = recorded;
            else {
              proxy.tampered++;
              recorded = tamper(mode, recorded, asked, token ?? "", proxy.tokens);
            }
          }
          if (isPush && pushMode.kind === "withhold") recorded = withheld();
          send(recorded);
        });
      });
      out.on("error", () => {
        res.writeHead(502);
        res.end();
      });
      out.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}

function tamper(mode: Mode, answer: Recorded, asked: Asked, token: string, tokens: string[]): Recorded {
  const headers = { ...answer.headers };
  switch (mode.kind) {
    case "flip": {
      const body = Buffer.from(answer.body);
      const at = Math.floor(body.length / 2);
      body[at] = body[at]! ^ 0x01;
      return { ...answer, body };
    }
    case "drop-signature":
      delete headers[SIGNATURE];
      return { ...answer, headers };
    case "other-token": {
      const other = tokens.find((t) => t !== token);
      if (other === undefined) throw new Error("no other token seen");
      headers[SIGNATURE] = signAnswer(other, asked, answer.status, answer.body);
      return { ...answer, headers };
    }
    case "replay":
      return mode.response;
    case "replay-resigned": {
      const replayed = mode.response;
      const resigned = {
        ...replayed.headers,
        [SIGNATURE]: signAnswer(token, asked, replayed.status, replayed.body),
      };
      return { ...replayed, headers: resigned };
    }
    case "relabel": {
      const data = JSON.parse(mode.response.body.toString("utf8")) as { version: number };
      data.version = mode.version;
      const body = Buffer.from(JSON.stringify(data));
      headers[SIGNATURE] = signAnswer(token, asked, answer.status, body);
      return { ...answer, headers, body };
    }
    case "pass":
      return answer;
  }
}

let root: string;
let proxy: TamperProxy;
let server: LatchkeyServer;
let alice: Machine;
let dir: string;

function ok(result: ProcessResult): ProcessResult {
  expect(result.code, `exit ${result.code}: ${result.stderr}`).toBe(0);
  return result;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-e2e-sync-tamper-"));
  proxy = await startProxy();
  // The server's public URL is the proxy's: logins, tokens and API calls all go through it.
  server = await startLatchkeyServer({ dataDir: join(root, "server"), env: { PUBLIC_URL: proxy.url } });
  // server.url is the public URL (the proxy's); the proxy forwards to the port the server listens on.
  const listening = await server.waitForEvent("server.listening");
  proxy.setTarget(`http://127.0.0.1:${String(listening.port)}`);
  await createUser(server, ALICE.email, ALICE.password);
  await createUser(server, MALLORY.email, MALLORY.password);
  const via = { url: proxy.url };
  alice = await newMachine(root, "alice");
  ok(await loginCli(alice, via, ALICE));
  const mallory = await newMachine(root, "mallory");
  ok(await loginCli(mallory, via, MALLORY));
  // Mallory's own traffic puts her token in front of the proxy.
  dir = join(root, "app");
  await mkdir(dir);
  await writeFile(join(dir, "package.json"), '{ "name": "tamper-app" }');
  ok(await latchkey(mallory, ["env", "set", "M=1"], { cwd: dir }));
  ok(await latchkey(mallory, ["env", "push"], { cwd: dir }));
  await rm(join(dir, "latchkey.json"));
}, 120_000);
afterAll(async () => {
  await server?.stop();
  await proxy?.close();
  await rm(root, { recursive: true, force: true });
});

describe("tampered sync responses", () => {
  it("every tampering is refused with nothing written; the untouched answer is accepted", async () => {
    ok(await latchkey(alice, ["env", "set", "CANARY=version-one-value"], { cwd: dir }));
    ok(await latchkey(alice, ["env", "push"], { cwd: dir }));
    ok(await latchkey(alice, ["env", "pull"], { cwd: dir }));
    const versionOne = proxy.lastPull;
    expect(versionOne).not.toBeNull();
    ok(await latchkey(alice, ["env", "set", "CANARY=version-two-value"], { cwd: dir }));
    ok(await latchkey(alice, ["env", "push"], { cwd: dir }));
    ok(await latchkey(alice, ["env", "pull"], { cwd: dir }));
    // A local change not pushed yet: a tampered pull must not touch it either.
    ok(await latchkey(alice, ["env", "set", "UNPUSHED=local"], { cwd: dir }));

    const output = join(dir, "out.env");
    const cases: [Mode, string][] = [
      [{ kind: "flip" }, "LK_SIGNATURE_INVALID"],
      [{ kind: "drop-signature" }, "LK_SIGNATURE_INVALID"],
      [{ kind: "other-token" }, "LK_SIGNATURE_INVALID"],
      // Signed for the earlier request that fetched it: refused before its version is even read.
      [{ kind: "replay", response: versionOne! }, "LK_SIGNATURE_INVALID"],
      [{ kind: "replay-resigned", response: versionOne! }, "LK_VAULT_ROLLBACK"],
      [{ kind: "relabel", response: versionOne!, version: 2 }, "LK_VAULT_DECRYPT_FAILED"],
    ];
    let accepted = 0;
    for (const [mode, code] of cases) {
      const before = { home: await snapshot(alice.latchkeyHome), project: await snapshot(dir) };
      proxy.mode = mode;
      const tampered = proxy.tampered;
      const result = await latchkey(alice, ["env", "pull", "--output", output], { cwd: dir });
      proxy.mode = { kind: "pass" };
      expect(proxy.tampered, mode.kind).toBe(tampered + 1);
      if (result.code === 0) accepted++;
      expect(result.stderr, `${mode.kind}: ${result.stderr}`).toContain(`error ${code}`);
      if (code === "LK_SIGNATURE_INVALID") expect(result.stderr).toContain("X-Latchkey-Signature");
      expect({ home: await snapshot(alice.latchkeyHome), project: await snapshot(dir) }, mode.kind).toEqual(
        before,
      );
    }
    expect(accepted).toBe(0);

    const good = ok(await latchkey(alice, ["env", "pull", "--output", output], { cwd: dir }));
    expect(good.stderr).toContain("version 2");
    const written = await readFile(output, "utf8");
    expect(written).toContain("CANARY=version-two-value");
    expect(written).toContain("UNPUSHED=local");
  }, 120_000);

  it("a signed pull answer replayed as the acknowledgement of a push is refused; the local change is not lost", async () => {
    const app = join(root, "replay-app");
    await mkdir(app);
    await writeFile(join(app, "package.json"), '{ "name": "replay-app" }');
    ok(await latchkey(alice, ["env", "set", "FIRST=one"], { cwd: app }));
    ok(await latchkey(alice, ["env", "push"], { cwd: app }));
    // Version 2 reaches the server but its acknowledgement never reaches the CLI, and neither does the pull of it:
    // the proxy now holds a pull answer for version 2, signed for this machine's token.
    ok(await latchkey(alice, ["env", "set", "SECOND=two"], { cwd: app }));
    proxy.pushMode = { kind: "withhold" };
    expect((await latchkey(alice, ["env", "push"], { cwd: app })).code).not.toBe(0);
    proxy.pushMode = { kind: "pass" };
    proxy.withholdPulls = true;
    expect((await latchkey(alice, ["env", "pull"], { cwd: app })).code).not.toBe(0);
    proxy.withholdPulls = false;
    const versionTwo = proxy.lastPull!;
    expect(JSON.parse(versionTwo.body.toString("utf8"))).toMatchObject({ version: 2 });

    // A change only this machine has. Its push (base 1, so version 2) is swallowed and answered with that pull
    // answer: as it is (signed for the pull), and re-signed for the push by someone holding the token.
    ok(await latchkey(alice, ["env", "set", "UNPUSHED=local-change"], { cwd: app }));
    for (const [resign, code] of [
      [false, "LK_SIGNATURE_INVALID"],
      [true, "LK_SERVER_ERROR"],
    ] as const) {
      const before = { home: await snapshot(alice.latchkeyHome), project: await snapshot(app) };
      const tampered = proxy.tampered;
      proxy.pushMode = { kind: "answer", response: versionTwo, resign };
      const result = await latchkey(alice, ["env", "push"], { cwd: app });
      proxy.pushMode = { kind: "pass" };
      expect(proxy.tampered).toBe(tampered + 1);
      expect(result.code, result.stderr).not.toBe(0);
      expect(result.stderr, result.stderr).toContain(`error ${code}`);
      // Nothing recorded: no synced version 2, latchkey.json's personalVersion still 1.
      expect(
        { home: await snapshot(alice.latchkeyHome), project: await snapshot(app) },
        String(resign),
      ).toEqual(before);
    }

    // The honest way through: pull version 2, merge, push version 3 with the local change in it.
    ok(await latchkey(alice, ["env", "pull"], { cwd: app }));
    const pushed = ok(await latchkey(alice, ["env", "push"], { cwd: app }));
    expect(pushed.stderr).toContain("version 3");
    // The server's copy alone, with the local vault gone: the change reached it.
    const vaultId = (JSON.parse(await readFile(join(app, "latchkey.json"), "utf8")) as { vault: string })
      .vault;
    await rm(join(alice.latchkeyHome, "vaults", `${vaultId}.enc`));
    const output = join(app, "server.env");
    const restored = ok(await latchkey(alice, ["env", "pull", "--output", output, "--json"], { cwd: app }));
    expect(JSON.parse(restored.stdout)).toMatchObject({ version: 3, restored: true });
    const written = await readFile(output, "utf8");
    for (const line of ["FIRST=one", "SECOND=two", "UNPUSHED=local-change"]) expect(written).toContain(line);
  }, 120_000);
});

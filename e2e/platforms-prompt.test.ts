// `latchkey env platforms connect` on a real pseudo-terminal (docs/platforms.md, "Commands"): the platform token
// is typed at the masked prompt and never shown, and a push carries exactly what was typed; Ctrl-C at the prompt
// and an empty answer each end the command with their error and leave no connection on the server.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFlyDouble, type FlyDouble } from "../packages/cli/test/support/platforms/fly-double.js";
import {
  CLI_BIN,
  latchkey,
  loginCli,
  newMachine,
  startServerWithUser,
  type LatchkeyServer,
  type Machine,
} from "./support/latchkey-server.js";
import { requirePart } from "./support/prerequisites.js";
import { KEYS, startOnTerminal, terminalCheck, type Terminal } from "./support/pty.js";
import { ok, projectDir } from "./support/teams.js";

const ANN = { email: "platforms-pty-ann@example.com", password: "platforms pty ann password for the e2e" };
const TOKEN = "q7Xr2ptoken-canary-7d41c9e0";
const VALUE = "lk-e2e-platform-pty-value-2b8f";
const APP = "acme-api";
const PROMPT = "fly API token (hidden): ";

describe.skipIf(!requirePart("the platform prompt e2e suite", terminalCheck()))(
  "env platforms connect at a masked prompt",
  () => {
    let root: string;
    let server: LatchkeyServer;
    let m: Machine;
    let dir: string;
    let fly: FlyDouble;

    /** `env platforms connect fly` named `name` on a terminal of its own, once its prompt shows. */
    const connectOnTerminal = async (name: string): Promise<Terminal> => {
      const terminal = startOnTerminal(
        process.execPath,
        [
          CLI_BIN,
          "env",
          "platforms",
          "connect",
          "fly",
          "--env",
          "default",
          "--app",
          APP,
          "--base-url",
          fly.url,
          "--name",
          name,
        ],
        { env: m.env, cwd: dir, columns: 200 },
      );
      await terminal.waitFor(PROMPT);
      return terminal;
    };
    const connectionNames = async (): Promise<string[]> =>
      (
        JSON.parse(ok(await latchkey(m, ["env", "platforms", "list", "--json"], { cwd: dir })).stdout) as {
          connections: { name: string }[];
        }
      ).connections.map((c) => c.name);

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), "lk-e2e-platforms-pty-"));
      server = await startServerWithUser({ dataDir: join(root, "server") }, ANN);
      m = await newMachine(root, "ann");
      ok(await loginCli(m, server, ANN));
      dir = await projectDir(root, "api", "api");
      ok(await latchkey(m, ["env", "set", "API_KEY"], { cwd: dir, input: VALUE }));
      ok(await latchkey(m, ["env", "push"], { cwd: dir }));
      fly = await startFlyDouble({ token: TOKEN, app: APP });
    }, 180_000);
    afterAll(async () => {
      await fly?.close();
      await server?.stop();
      await rm(root, { recursive: true, force: true });
    });

    it("Ctrl-C at the prompt: cancelled, said so, and no connection on the server", async () => {
      const terminal = await connectOnTerminal("fly-cancelled");
      terminal.type(KEYS.ctrlC);
      const ended = await terminal.exited;
      expect(ended.code, ended.output).toBe(130);
      expect(ended.output).toContain("error LK_CANCELLED: Cancelled at the prompt; nothing was changed.");
      expect(ended.output).not.toContain("Connected");
      expect(await connectionNames()).toEqual([]);
      expect(fly.requests).toEqual([]);
    }, 120_000);

    it("an empty answer is refused with its reason, and no connection is made", async () => {
      const terminal = await connectOnTerminal("fly-empty");
      terminal.type(KEYS.enter);
      const ended = await terminal.exited;
      expect(ended.code, ended.output).not.toBe(0);
      expect(ended.output).toContain(
        "error LK_INPUT_EMPTY: Nothing was typed at the prompt: there is no fly credential to connect with. Nothing was sent.",
      );
      // The hint names connect's own ways in, not another command's --allow-empty.
      expect(ended.output).toContain("--credential-stdin or --credential-file FILE");
      expect(ended.output).not.toContain("--allow-empty");
      expect(await connectionNames()).toEqual([]);
      expect(fly.requests).toEqual([]);
    }, 120_000);

    it("the typed token is never shown, and a push carries exactly that token", async () => {
      const terminal = await connectOnTerminal("fly-typed");
      terminal.type(`${TOKEN}${KEYS.enter}`);
      const ended = await terminal.exited;
      expect(ended.code, ended.output).toBe(0);
      expect(ended.output).toContain("Connected fly-typed");
      // Neither the token nor any run of its characters the terminal echoed (a mask shows no part of it).
      expect(ended.output.includes(TOKEN)).toBe(false);
      expect(ended.output.includes(TOKEN.slice(0, 8))).toBe(false);
      expect(ended.output.includes(TOKEN.slice(-8))).toBe(false);
      expect(await connectionNames()).toEqual(["fly-typed"]);

      const pushed = ok(await latchkey(m, ["env", "platforms", "push", "fly-typed"], { cwd: dir }));
      expect(pushed.stderr).toContain("+ API_KEY");
      expect(fly.refusals).toEqual([]);
      expect(fly.requests.length).toBeGreaterThan(0);
      expect(fly.requests.every((r) => r.headers.authorization === `Bearer ${TOKEN}`)).toBe(true);
      expect(fly.secrets.get("API_KEY") === VALUE).toBe(true);
    }, 120_000);
  },
);

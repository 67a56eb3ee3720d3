// Prompts on a real pseudo-terminal: a person who presses Ctrl-C, Escape or Ctrl-D at any prompt ends the command
// cleanly (LK_CANCELLED, exit 130) with nothing written. Ctrl-D at an empty line used to leave the prompt's
// promise unsettled: Node exited 13 with "unsettled top-level await".
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleForTest } from "./support/bundle.js";
import { CLI } from "./support/cli.js";
import { requirePart } from "./support/prerequisites.js";
import { snapshot, tempProject } from "./support/project.js";
import { KEYS, startOnTerminal, terminalCheck, type TerminalResult } from "./support/pty.js";

const CANCEL_KEYS = { "Ctrl-C": KEYS.ctrlC, Escape: KEYS.escape, "Ctrl-D": KEYS.ctrlD } as const;

function expectCancelled(result: TerminalResult): void {
  expect(result.code, result.output).toBe(130);
  expect(result.output).toContain("error LK_CANCELLED: Cancelled at the prompt; nothing was changed.");
  expect(result.output).not.toContain("unsettled top-level await");
}

describe.skipIf(!requirePart("the terminal prompt tests", terminalCheck()))("prompts on a terminal", () => {
  let dir: string;
  let driver: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "lk-e2e-prompts-"));
    driver = join(dir, "prompt-driver.mjs");
    await bundleForTest({
      entryPoints: [fileURLToPath(new URL("../packages/cli/test/support/prompt-driver.ts", import.meta.url))],
      outfile: driver,
    });
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** The real context's `kind` prompt on a terminal, answered with `keys` once it shows `shown`. */
  async function prompt(kind: "secret" | "confirm", keys: string): Promise<TerminalResult> {
    const terminal = startOnTerminal(process.execPath, [driver, kind], { env: { PATH: process.env.PATH } });
    await terminal.waitFor(kind === "secret" ? "Secret value" : "Go ahead?");
    terminal.type(keys);
    return terminal.exited;
  }

  for (const kind of ["secret", "confirm"] as const) {
    for (const [name, key] of Object.entries(CANCEL_KEYS)) {
      it(`${name} at the ${kind} prompt cancels it: LK_CANCELLED, exit 130`, async () => {
        const result = await prompt(kind, key);
        expectCancelled(result);
        expect(result.output).not.toContain("answer:");
      });
    }
  }

  it("an answer still arrives: typed text, with Ctrl-D mid-line deleting nothing, and Enter", async () => {
    const secret = await prompt("secret", `typed${KEYS.ctrlD}${KEYS.enter}`);
    expect(secret.code, secret.output).toBe(0);
    expect(secret.output).toContain('answer: "typed"');
    const confirm = await prompt("confirm", KEYS.enter);
    expect(confirm.code, confirm.output).toBe(0);
    expect(confirm.output).toContain("answer: false");
  });

  it.each([
    ["env set KEY", ["env", "set", "KEY"], "Value for KEY"],
    ["login --registry", ["login", "--registry", "https://registry.example.com/"], "Token for"],
  ])("Ctrl-D at `%s`'s masked prompt cancels it and writes nothing", async (_name, args, shown) => {
    const project = await tempProject();
    try {
      const before = await snapshot(project.root);
      const terminal = startOnTerminal(process.execPath, [CLI, ...args], {
        env: project.env(),
        cwd: project.dir,
      });
      await terminal.waitFor(shown);
      terminal.type(KEYS.ctrlD);
      expectCancelled(await terminal.exited);
      expect(await snapshot(project.root)).toEqual(before);
    } finally {
      await project.cleanup();
    }
  });
});

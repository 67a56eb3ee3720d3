// The one decision behind `login`, `logout` and `whoami`: which target a command line means, from the options
// given, LATCHKEY_SERVER and the profile. Nothing here reaches the network (the test context's fetch throws).
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestContext } from "../../test/support/context.js";
import { buildProgram, runCli } from "../cli.js";
import { resolvePaths } from "../paths.js";
import {
  TARGET_OPTIONS,
  givenOptions,
  resolveLoginTarget,
  type LoginTarget,
  type TargetCall,
  type TargetedCommand,
} from "./target.js";

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "lk-target-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Where the server may come from: LATCHKEY_SERVER, the default profile, a profile named `work`, or nowhere. */
type Setup = "none" | "env" | "profile" | "work" | "serverless-work";

async function context(setup: Setup) {
  const home = join(root, `h${++n}`);
  await mkdir(home, { recursive: true });
  const config = {
    none: "",
    env: "",
    profile: `[profiles.default]\nserver = "https://lk.example.com"\n`,
    work: `[profiles.work]\nserver = "https://work.example.com"\n`,
    "serverless-work": `[profiles.work]\nsso_issuer = "https://login.example.com"\n`,
  }[setup];
  await writeFile(join(home, "config.toml"), config);
  const env: Record<string, string> = { LATCHKEY_HOME: home };
  if (setup === "env") env.LATCHKEY_SERVER = "https://lk.example.com";
  return createTestContext({ env, paths: resolvePaths(env), cwd: home });
}

/** A resolver case: the command line (`sso` for the subcommand), where a server is configured, the answer. */
type Case = [TargetedCommand, string[], Setup, LoginTarget | { code: string; message?: string }];

const CASES: Case[] = [
  // No option: the server wherever one is configured, else the default registry.
  ["login", [], "none", "registry"],
  ["login", [], "env", "server"],
  ["login", [], "profile", "server"],
  ["logout", [], "profile", "server"],
  ["whoami", [], "env", "server"],
  ["whoami", ["--json"], "profile", "server"],
  ["whoami", ["--json"], "none", "registry"],
  // --profile picks whose server; a profile without one cannot take --profile.
  ["login", ["--profile"], "work", "server"],
  ["whoami", ["--profile"], "work", "server"],
  [
    "login",
    ["--profile"],
    "serverless-work",
    { code: "LK_USAGE", message: "--profile needs a Latchkey server, and none is configured." },
  ],
  // --server always means the server; registry options with it are refused.
  ["login", ["--server"], "none", "server"],
  ["logout", ["--server"], "none", "server"],
  ["login", ["--server", "--device", "--no-browser"], "none", "server"],
  [
    "login",
    ["--server", "--npm", "--token-stdin"],
    "none",
    {
      code: "LK_USAGE",
      message:
        "`login --server` is a Latchkey server login; it takes no registry options (got --npm, --token-stdin).",
    },
  ],
  ["logout", ["--server", "--all"], "none", { code: "LK_USAGE", message: "(got --all)" }],
  ["whoami", ["--server", "--explain"], "none", { code: "LK_USAGE", message: "(got --explain)" }],
  // A registry option means a registry, even where a server is configured.
  ["login", ["--npm"], "env", "registry"],
  ["login", ["--no-verify"], "profile", "registry"],
  ["logout", ["--all"], "profile", "registry"],
  ["whoami", ["--explain"], "env", "registry"],
  ["whoami", ["--gitlab", "--json"], "profile", "registry"],
  [
    "login",
    ["--github", "--device"],
    "profile",
    {
      code: "LK_USAGE",
      message: "--device is for a Latchkey server login, not a registry's (got --github).",
    },
  ],
  [
    "logout",
    ["--npm", "--profile"],
    "work",
    { code: "LK_USAGE", message: "--profile is for a Latchkey server logout, not a registry's (got --npm)." },
  ],
  // Server-only options need a server.
  ["login", ["--device"], "env", "server"],
  ["login", ["--no-browser"], "profile", "server"],
  [
    "login",
    ["--device", "--no-browser"],
    "none",
    { code: "LK_USAGE", message: "--device, --no-browser need a Latchkey server, and none is configured." },
  ],
  // `sso`: the SSO session, whatever is configured; options given before `sso` are refused.
  ["login", ["sso"], "none", "sso"],
  ["login", ["sso"], "profile", "sso"],
  ["logout", ["sso"], "env", "sso"],
  ["login", ["sso", "--verbose"], "none", "sso"],
  [
    "login",
    ["sso", "--github"],
    "none",
    { code: "LK_USAGE", message: "`login sso` takes no registry options (got --github)." },
  ],
  ["logout", ["sso", "--server"], "none", { code: "LK_USAGE", message: "(got --server)" }],
  ["login", ["sso", "--profile"], "work", { code: "LK_USAGE", message: "(got --profile)" }],
  ["login", ["sso", "--npm", "--token"], "none", { code: "LK_TOKEN_IN_ARGV" }],
];

describe("resolveLoginTarget", () => {
  it.each(CASES)("%s %j with the server from %s: %j", async (command, words, setup, expected) => {
    const ctx = await context(setup);
    const sso = words[0] === "sso";
    const given = sso ? words.slice(1) : words;
    const call: TargetCall = { command, given, sso };
    if (given.includes("--profile")) call.profile = "work";
    const outcome = resolveLoginTarget(ctx, call);
    if (typeof expected === "string") {
      await expect(outcome).resolves.toBe(expected);
    } else {
      const error: unknown = await outcome.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toMatchObject({ code: expected.code });
      if (expected.message !== undefined) expect((error as Error).message).toContain(expected.message);
    }
  });
});

function find(program: Command, name: string): Command {
  return program.commands.find((c) => c.name() === name)!;
}

describe("the options the resolver reads", () => {
  it("are options of the command, and every option of the command is one it reads or one of no target", () => {
    const program = buildProgram(createTestContext(), { exitCode: 0 });
    const neutral = ["--server", "--profile", "--json", "--verbose"];
    for (const name of ["login", "logout", "whoami"] as const) {
      const declared = find(program, name).options.map((o) => o.long);
      const { registry, server } = TARGET_OPTIONS[name];
      for (const flag of [...registry, ...server]) expect(declared, `${name} ${flag}`).toContain(flag);
      for (const flag of declared)
        expect([...registry, ...server, ...neutral], `${name} ${flag}`).toContain(flag);
    }
  });

  it("are the ones given on the command line, never a default", async () => {
    const program = buildProgram(createTestContext(), { exitCode: 0 });
    const seen: string[][] = [];
    const login = find(program, "login");
    login.action((_opts: unknown, command: Command) => {
      seen.push(givenOptions(command));
    });
    find(login, "sso").action((_opts: unknown, command: Command) => {
      seen.push(givenOptions(command.parent!), givenOptions(command));
    });
    await program.parseAsync(["login", "--no-browser", "--npm", "-v"], { from: "user" });
    await program.parseAsync(["login", "sso", "--issuer", "https://login.example.com"], { from: "user" });
    // --no-browser's default (true) and sso's --timeout default (300) are not given options.
    expect(seen).toEqual([["--npm", "--no-browser", "--verbose"], [], ["--issuer"]]);
  });

  it("name the option as typed when `login sso` refuses one", async () => {
    const ctx = await context("none");
    expect(await runCli(["login", "--no-browser", "sso"], ctx)).toBe(2);
    expect(ctx.stderr.text()).toContain("`login sso` takes no registry options (got --no-browser)");
  });
});

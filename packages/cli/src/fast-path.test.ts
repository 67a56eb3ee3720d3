// The fast path must mean exactly what the full CLI means. For each command line, commander's parse (with the
// actions swapped for recorders) is compared with parseFastPath; lines the fast path declines must be ones
// commander either rejects or handles some other way (help, verbose, unusual option spellings).
import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { createTestContext } from "../test/support/context.js";
import { buildProgram } from "./cli.js";
import { parseFastPath, type FastCommand } from "./fast-path.js";
import { codeCacheKind } from "./launcher/code-cache.js";

function find(program: Command, path: string[]): Command {
  let command = program;
  for (const name of path) command = command.commands.find((c) => c.name() === name)!;
  return command;
}

/** What commander makes of `argv`, in the fast path's terms; "error" when it rejects the line. */
async function commanderParse(argv: string[]): Promise<FastCommand | "error" | "other"> {
  const program = buildProgram(createTestContext(), { exitCode: 0 });
  let parsed: FastCommand | "other" = "other";
  const recordRun = (
    command: string[],
    opts: {
      env: string;
      mask?: boolean;
      check: boolean;
      allowOverride?: boolean;
      offline?: boolean;
      maxAge?: string;
    },
  ) => {
    parsed = {
      kind: "run",
      environment: opts.env,
      mask: opts.mask === true,
      check: opts.check,
      allowOverride: opts.allowOverride === true,
      offline: opts.offline === true,
      ...(opts.maxAge === undefined ? {} : { maxAge: opts.maxAge }),
      command,
    };
  };
  find(program, ["run"]).action(recordRun);
  find(program, ["env", "run"]).action(recordRun);
  find(program, ["env", "get"]).action(
    (key: string, opts: { env: string; offline?: boolean; maxAge?: string }) => {
      parsed = {
        kind: "env-get",
        environment: opts.env,
        key,
        offline: opts.offline === true,
        ...(opts.maxAge === undefined ? {} : { maxAge: opts.maxAge }),
      };
    },
  );
  find(program, ["keystore", "get"]).action((account: string) => {
    parsed = { kind: "keystore-get", account };
  });
  find(program, ["git-credential"]).action((operation: string) => {
    parsed = { kind: "git-credential", operation };
  });
  find(program, ["token"]).action((opts: Record<string, unknown>) => {
    parsed = { kind: "token", selection: opts };
  });
  find(program, ["credential-provider"]).action(
    (opts: { registryUri: string; format: "latchkey" | "npm-rfc" }) => {
      parsed = { kind: "credential-provider", registryUri: opts.registryUri, format: opts.format };
    },
  );
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch {
    return "error";
  }
  return parsed;
}

const lines: string[][] = [
  ["run", "--", "node", "-e", "1"],
  ["run", "node", "-e", "1"],
  ["run", "--mask", "--", "sh", "-c", "echo $X"],
  ["run", "--no-check", "--env", "staging", "--", "true"],
  ["run", "-e", "prod", "--mask", "npm", "start", "--", "--port", "3000"],
  ["run", "--env=qa", "true"],
  ["run", "--env", "a", "--env", "b", "true"],
  ["env", "run", "--", "true"],
  ["env", "run", "--mask", "printenv", "--mask"],
  ["run", "--allow-override", "--", "node", "-e", "1"],
  ["run", "-e", "prod", "--allow-override", "--mask", "true"],
  ["env", "run", "--allow-override", "true"],
  ["run", "--", "printenv", "--allow-override"],
  ["run", "printenv", "--allow-override"],
  ["run", "--allow-override=yes", "true"],
  ["run", "--offline", "--", "true"],
  ["run", "--offline", "--max-age", "7d", "--", "true"],
  ["run", "--max-age=30m", "-e", "prod", "true"],
  ["run", "--max-age", "soon", "true"],
  ["run", "--max-age=", "true"],
  ["run", "--max-age", "1h", "--max-age", "2h", "true"],
  ["run", "--max-age", "--", "true"],
  ["run", "--max-age"],
  ["run", "--offline=yes", "true"],
  ["run", "--", "printenv", "--offline"],
  ["run", "printenv", "--offline", "--max-age", "1h"],
  ["env", "run", "--offline", "--mask", "true"],
  ["run"],
  ["run", "--"],
  ["run", "--help"],
  ["run", "--env"],
  ["run", "--unknown", "true"],
  ["run", "-v", "true"],
  ["-v", "run", "true"],
  ["env", "get", "KEY"],
  ["env", "get", "--env", "staging", "KEY"],
  ["env", "get", "KEY", "-e", "prod"],
  ["env", "get", "--env=x", "KEY"],
  ["env", "get"],
  ["env", "get", "A", "B"],
  ["env", "get", "--json", "A"],
  ["env", "get", "--offline", "KEY"],
  ["env", "get", "KEY", "--offline", "--max-age", "12h"],
  ["env", "get", "--max-age=2d", "KEY"],
  ["env", "get", "--max-age", "KEY"],
  ["env", "get", "--max-age", "-1h", "KEY"],
  ["keystore", "get", "registry://npm.example/"],
  ["keystore", "get"],
  ["keystore", "get", "a", "b"],
  ["keystore", "get", "--help"],
  ["keystore", "list"],
  ["git-credential", "get"],
  ["git-credential", "store"],
  ["git-credential", "erase"],
  ["git-credential", "capability"],
  ["git-credential"],
  ["git-credential", "--help"],
  ["git-credential", "get", "extra"],
  ["token", "--registry", "https://npm.example.com/"],
  ["token", "--registry=https://npm.example.com/"],
  ["token", "--registry="],
  ["token", "--npm"],
  ["token", "--github"],
  ["token", "--gitlab"],
  ["token"],
  ["token", "--registry"],
  ["token", "--npm", "--github"],
  ["token", "--registry", "https://a/", "--npm"],
  ["token", "--token", "x"],
  ["credential-provider", "--registry-uri", "https://npm.example.com/"],
  ["credential-provider", "--registry-uri=https://npm.example.com/"],
  ["credential-provider"],
  ["credential-provider", "--registry-uri"],
  ["credential-provider", "--registry-uri", "a", "b"],
  ["credential-provider", "--format", "npm-rfc", "--registry-uri", "https://npm.example.com/"],
  ["credential-provider", "--registry-uri=https://npm.example.com/", "--format=npm-rfc"],
  ["credential-provider", "--registry-uri", "https://npm.example.com/", "--format", "latchkey"],
  ["credential-provider", "--registry-uri", "https://npm.example.com/", "--format", "yaml"],
  ["credential-provider", "--registry-uri", "https://npm.example.com/", "--format"],
  ["credential-provider", "--format", "npm-rfc"],
  ["credential-provider", "--registry-uri", "a", "--registry-uri", "b"],
  ["doctor"],
];

describe("fast path", () => {
  it.each(lines.map((l) => [l.join(" "), l] as const))(
    "agrees with commander on `%s`",
    async (_name, argv) => {
      const fast = parseFastPath(argv);
      const full = await commanderParse([...argv]);
      if (fast === null) {
        // Declined lines go to commander, which is then the only judge: nothing to compare.
        return;
      }
      expect(full).toEqual(fast);
    },
  );

  it.each(lines.map((l) => [l.join(" "), l] as const))(
    "gives `%s` the launcher's code cache of its command",
    (_name, argv) => {
      const fast = parseFastPath(argv);
      // A fast command saves under its kind; anything else under "other" (launcher/code-cache.ts).
      if (fast === null) return;
      const expected = fast.kind === "run" && argv[0] === "env" ? "env-run" : fast.kind;
      expect(codeCacheKind(argv)).toBe(expected);
    },
  );

  it("leaves every line with -v or --json to the full CLI, which prints its errors accordingly", () => {
    // The fast path prints errors as plain text at -v 0, so it must never take a line that asks otherwise.
    for (const argv of [
      ["env", "get", "KEY", "--json"],
      ["env", "get", "KEY", "-v"],
      ["keystore", "get", "--json"],
      ["token", "--npm", "--json"],
      ["token", "--npm", "-v"],
      ["run", "-v", "--", "true"],
      ["credential-provider", "--registry-uri", "https://npm.example.com/", "--json"],
    ]) {
      expect(parseFastPath(argv), argv.join(" ")).toBeNull();
    }
  });

  it("takes the common shapes (so they really skip commander)", () => {
    expect(parseFastPath(["run", "--", "true"])).not.toBeNull();
    expect(parseFastPath(["run", "--mask", "-e", "staging", "npm", "test"])).not.toBeNull();
    expect(parseFastPath(["env", "get", "KEY"])).not.toBeNull();
    expect(parseFastPath(["keystore", "get", "acct"])).not.toBeNull();
    expect(parseFastPath(["run", "--help"])).toBeNull();
    expect(parseFastPath(["run", "--allow-override", "--", "true"])).toEqual({
      kind: "run",
      environment: "default",
      mask: false,
      check: true,
      allowOverride: true,
      offline: false,
      command: ["true"],
    });
    expect(parseFastPath(["run", "--offline", "--max-age", "7d", "--", "true"])).toMatchObject({
      offline: true,
      maxAge: "7d",
      command: ["true"],
    });
    expect(parseFastPath(["env", "get", "--max-age=30m", "KEY"])).toEqual({
      kind: "env-get",
      environment: "default",
      key: "KEY",
      offline: false,
      maxAge: "30m",
    });
    expect(parseFastPath(["run", "--", "true", "--allow-override"])).toMatchObject({
      allowOverride: false,
      command: ["true", "--allow-override"],
    });
    expect(parseFastPath(["doctor"])).toBeNull();
    expect(
      parseFastPath([
        "credential-provider",
        "--format",
        "npm-rfc",
        "--registry-uri",
        "https://npm.example.com/",
      ]),
    ).toEqual({ kind: "credential-provider", registryUri: "https://npm.example.com/", format: "npm-rfc" });
  });
});

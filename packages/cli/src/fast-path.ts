// The commands that other programs run many times a second — `run`, `env get`, `keystore get`, later the
// credential helpers — start without commander: parsing it and building the whole command tree costs more than
// everything else these commands do. Only exact, simple shapes are taken here; anything else (help, -v, an
// unknown flag, a malformed line) falls through to the full CLI, which parses and reports it. fast-path.test.ts
// checks that every shape taken here means the same as it does to commander.
import type { Context } from "./context.js";
import { envGet, runWithSecrets } from "./commands/env.js";
import {
  PROVIDER_ANSWER_FORMATS,
  credentialProvider,
  type ProviderAnswerFormat,
} from "./commands/credential-provider.js";
import { gitCredential } from "./commands/git-credential.js";
import { keystoreGet } from "./commands/keystore.js";
import { printToken, type RegistrySelection } from "./commands/registry.js";
import type { RunState } from "./commands/support.js";
import { createNodeContext } from "./node-context.js";

export { flushOutputs } from "./node-context.js";
import { printError } from "./output/output.js";
import { exitLikeChild } from "./run/child.js";
import { DEFAULT_ENVIRONMENT } from "./vault/names.js";

/** A command line the fast path can run, already parsed. */
export type FastCommand =
  | {
      kind: "run";
      environment: string;
      mask: boolean;
      check: boolean;
      allowOverride: boolean;
      offline: boolean;
      maxAge?: string;
      command: string[];
    }
  | { kind: "env-get"; environment: string; key: string; offline: boolean; maxAge?: string }
  | { kind: "keystore-get"; account: string }
  | { kind: "git-credential"; operation: string }
  | { kind: "token"; selection: RegistrySelection }
  | { kind: "credential-provider"; registryUri: string; format: ProviderAnswerFormat };

/** `--name VALUE` or `--name=VALUE` as the whole of `rest`; null for anything else. */
function soleOption(rest: readonly string[], name: string): string | null {
  if (rest.length === 2 && rest[0] === name && !rest[1]!.startsWith("-")) return rest[1]!;
  if (rest.length === 1 && rest[0]!.startsWith(`${name}=`)) return rest[0]!.slice(name.length + 1) || null;
  return null;
}

function parseToken(rest: readonly string[]): FastCommand | null {
  if (rest.length === 1 && (rest[0] === "--npm" || rest[0] === "--github" || rest[0] === "--gitlab")) {
    return { kind: "token", selection: { [rest[0].slice(2)]: true } };
  }
  const registry = soleOption(rest, "--registry");
  return registry === null ? null : { kind: "token", selection: { registry } };
}

/** The options `run` and `env get` share: -e/--env, --offline and --max-age. */
interface ReadOptions {
  environment: string;
  offline: boolean;
  maxAge?: string;
}

/**
 * Takes the shared option at `rest[i]` into `options`: the index of its last token, or null when it is none of
 * them or malformed (a missing value, or one that looks like an option).
 */
function takeReadOption(rest: readonly string[], i: number, options: ReadOptions): number | null {
  const token = rest[i]!;
  if (token === "--offline") options.offline = true;
  else if (token.startsWith("--env=")) options.environment = token.slice("--env=".length);
  else if (token.startsWith("--max-age=")) options.maxAge = token.slice("--max-age=".length);
  else if (token === "-e" || token === "--env" || token === "--max-age") {
    const value = rest[i + 1];
    if (value === undefined || value.startsWith("-")) return null;
    if (token === "--max-age") options.maxAge = value;
    else options.environment = value;
    return i + 1;
  } else return null;
  return i;
}

function parseRun(rest: readonly string[]): FastCommand | null {
  const options: ReadOptions = { environment: DEFAULT_ENVIRONMENT, offline: false };
  let mask = false;
  let check = true;
  let allowOverride = false;
  const run = (command: string[]): FastCommand => ({
    kind: "run",
    ...options,
    mask,
    check,
    allowOverride,
    command,
  });
  for (let i = 0; i < rest.length; i++) {
    const token = rest[i]!;
    if (token === "--") {
      const command = rest.slice(i + 1);
      return command.length > 0 ? run(command) : null;
    }
    if (token === "--mask") mask = true;
    else if (token === "--no-check") check = false;
    else if (token === "--allow-override") allowOverride = true;
    else if (token.startsWith("-")) {
      const last = takeReadOption(rest, i, options);
      if (last === null) return null;
      i = last;
    } else return run(rest.slice(i));
  }
  return null;
}

function parseEnvGet(rest: readonly string[]): FastCommand | null {
  const options: ReadOptions = { environment: DEFAULT_ENVIRONMENT, offline: false };
  const positional: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const token = rest[i]!;
    if (token.startsWith("-")) {
      const last = takeReadOption(rest, i, options);
      if (last === null) return null;
      i = last;
    } else positional.push(token);
  }
  return positional.length === 1 ? { kind: "env-get", ...options, key: positional[0]! } : null;
}

/** `--registry-uri URI` and at most one `--format F`, each as `--name VALUE` or `--name=VALUE`, in either order. */
function parseCredentialProvider(rest: readonly string[]): FastCommand | null {
  const values = new Map<string, string>();
  for (let i = 0; i < rest.length; i++) {
    const token = rest[i]!;
    const eq = token.indexOf("=");
    const name = eq === -1 ? token : token.slice(0, eq);
    if ((name !== "--registry-uri" && name !== "--format") || values.has(name)) return null;
    const value = eq === -1 ? rest[++i] : token.slice(eq + 1);
    if (value === undefined || value === "" || value.startsWith("-")) return null;
    values.set(name, value);
  }
  const registryUri = values.get("--registry-uri");
  const format = values.get("--format") ?? "latchkey";
  if (registryUri === undefined || !(PROVIDER_ANSWER_FORMATS as readonly string[]).includes(format))
    return null;
  return { kind: "credential-provider", registryUri, format: format as ProviderAnswerFormat };
}

/** Parses `argv` when it is one of the fast shapes; null sends it to the full CLI. */
export function parseFastPath(argv: readonly string[]): FastCommand | null {
  const [first, second] = argv;
  if (first === "run") return parseRun(argv.slice(1));
  if (first === "env" && second === "run") return parseRun(argv.slice(2));
  if (first === "env" && second === "get") return parseEnvGet(argv.slice(2));
  if (first === "keystore" && second === "get" && argv.length === 3 && !argv[2]!.startsWith("-")) {
    return { kind: "keystore-get", account: argv[2]! };
  }
  if (first === "token") return parseToken(argv.slice(1));
  if (first === "credential-provider") return parseCredentialProvider(argv.slice(1));
  if (first === "git-credential" && argv.length === 2 && !second!.startsWith("-")) {
    return { kind: "git-credential", operation: second! };
  }
  return null;
}

/** Runs a parsed fast command with the same functions, and the same error output, as the full CLI. */
export async function runFastCommand(command: FastCommand, ctx: Context): Promise<RunState> {
  const state: RunState = { exitCode: 0 };
  try {
    switch (command.kind) {
      case "run":
        state.exitCode = await runWithSecrets(ctx, state, command);
        break;
      case "env-get":
        state.exitCode = await envGet(ctx, command);
        break;
      case "keystore-get":
        state.exitCode = await keystoreGet(ctx, command.account);
        break;
      case "git-credential":
        state.exitCode = await gitCredential(ctx, command.operation);
        break;
      case "token":
        state.exitCode = await printToken(ctx, command.selection);
        break;
      case "credential-provider":
        state.exitCode = await credentialProvider(ctx, command.registryUri, 0, command.format);
        break;
    }
  } catch (error) {
    state.exitCode = printError(ctx, error, 0);
  }
  return state;
}

/** The process entry for fast shapes: the exit code, or null when the full CLI must handle `argv`. */
export async function fastMain(argv: readonly string[]): Promise<number | null> {
  const command = parseFastPath(argv);
  if (command === null) return null;
  const outcome = await runFastCommand(command, createNodeContext());
  if (outcome.signal) exitLikeChild({ code: null, signal: outcome.signal });
  return outcome.exitCode;
}

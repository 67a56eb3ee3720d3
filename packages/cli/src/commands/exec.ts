// `latchkey exec -- <npm|pnpm|yarn|cmd> args…`: the program gets, in its environment only, the token of every
// registry the .npmrc files name, in the variables each client reads (registry/handoff.ts has the evidence).
// No .npmrc is written, no token goes into argv, and the program's exit and signals pass through as with `run`.
import { LatchkeyError } from "@latchkey/core";
import type { Context } from "../context.js";
import { printStatus } from "../output/output.js";
import {
  clientEnvironment,
  findNamedRegistries,
  handoffVariable,
  uniqueRegistries,
} from "../registry/handoff.js";
import type { NamedRegistry } from "../registry/handoff.js";
import { resolveRegistryToken } from "../registry/sources.js";
import type { TokenSource } from "../registry/types.js";
import { runProgram } from "../run/replace.js";
import type { RunState } from "./support.js";

/** Options of `exec`. */
export interface ExecOptions {
  /** The program and its arguments. */
  readonly command: readonly string[];
  /** Refuse to start when a registry an .npmrc or the environment names has no token. */
  readonly strict: boolean;
  readonly verbose: number;
}

/** One registry's outcome, for the notes and for tests. */
export interface ExecRegistry {
  readonly registry: NamedRegistry;
  readonly source: TokenSource | null;
}

/** What `exec` hands to the program: the added environment and the per-registry outcome. */
export interface ExecPlan {
  readonly env: Record<string, string>;
  readonly registries: readonly ExecRegistry[];
}

/**
 * Finds the registries and resolves their tokens (resolveRegistryToken: input > env > provider > host CLI >
 * keystore). Notes about registries without a token, and settings that could not be used, go to stderr.
 */
export async function planExec(
  ctx: Context,
  options: Pick<ExecOptions, "strict" | "verbose">,
): Promise<ExecPlan> {
  const discovery = await findNamedRegistries(ctx);
  for (const ignored of discovery.ignored) {
    printStatus(ctx, `Note: ignoring ${ignored.key} from ${ignored.origin}: ${ignored.reason}.`);
  }
  const env: Record<string, string> = {};
  const registries: ExecRegistry[] = [];
  for (const registry of uniqueRegistries(discovery.registries)) {
    const resolution = await resolveRegistryToken(ctx, registry.url);
    registries.push({ registry, source: resolution.source });
    if (resolution.token !== null) Object.assign(env, clientEnvironment(registry.nerfDart, resolution.token));
  }
  const missing = registries.filter((r) => r.source === null);
  // npmjs is only there by default: under --strict, a project that installs public packages anonymously must
  // still run.
  const required = missing.filter((r) => r.registry.origin !== "default");
  if (options.strict && required.length > 0) {
    throw new LatchkeyError("LK_TOKEN_MISSING", {
      message: `No token for ${required.map((r) => `${r.registry.nerfDart} (${describeOrigin(r.registry)})`).join(", ")}; not starting the program (--strict).`,
      details: { registries: required.map((r) => r.registry.nerfDart) },
    });
  }
  for (const r of missing) {
    printStatus(
      ctx,
      `Note: no token for ${r.registry.nerfDart} (${describeOrigin(r.registry)}); passing none for it.`,
    );
  }
  if (options.verbose > 0) {
    for (const r of registries.filter((x) => x.source !== null)) {
      printStatus(
        ctx,
        `Passing the ${r.source} token for ${r.registry.nerfDart} (${describeOrigin(r.registry)}) as npm_config_/pnpm_config_${r.registry.nerfDart}:_authToken and ${handoffVariable(r.registry.nerfDart)}.`,
      );
    }
  }
  return { env, registries };
}

function describeOrigin(registry: NamedRegistry): string {
  const what = registry.scope === null ? "default registry" : `${registry.scope} registry`;
  if (registry.origin === "default") return "npm's default registry";
  if (registry.origin === "environment") return `${what}, from npm_config_* in the environment`;
  return `${what} in ${registry.origin}`;
}

/** `latchkey exec`: runs the program with the registry tokens in its environment; returns its exit code. */
export async function execWithTokens(ctx: Context, state: RunState, options: ExecOptions): Promise<number> {
  const [command, ...args] = options.command;
  if (command === undefined) {
    throw new LatchkeyError("LK_USAGE", {
      message: "No program given.",
      hint: "Usage: latchkey exec [--strict] -- program [args…], e.g. latchkey exec -- npm install",
    });
  }
  const plan = await planExec(ctx, options);
  const inherited: Record<string, string> = {};
  for (const [key, value] of Object.entries(ctx.env)) if (value !== undefined) inherited[key] = value;
  const outcome = await runProgram(ctx, { command, args, env: { ...inherited, ...plan.env } });
  if (outcome.signal) state.signal = outcome.signal;
  return outcome.code ?? 1;
}

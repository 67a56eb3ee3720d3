// The consumer side of the npm credential-provider protocol: a registry in config.toml or latchkey.json may name
// an external command (an argv array, never a shell line) that prints the registry's token.
//
// The protocol is the one proposed in npm/rfcs#850 ("Credential Provider Plugin Protocol", draft
// accepted/0000-credential-provider-plugin.md): the provider runs as a child process without stdin, writes one
// UTF-8 JSON object on stdout and its diagnostics on stderr, and the client keeps the answer in memory for the
// life of the process, respecting `expiresAt`, and never writes it to disk. Latchkey's dialect, which its own
// `latchkey credential-provider` speaks: the registry is passed as `--registry-uri <URI>` appended to the
// declared argv (the draft leaves the arguments to the configured command), and exit code 1 with nothing on stdout
// means "no credential for this registry". Either answer shape is read (parseProviderAnswer): Latchkey's
// `{"token": "…", "expiresAt": "<ISO-8601>" | null}`, or the draft's `{"_authToken": "…", "expiresAt": <unix s>}`.
//
// A provider declared by a project runs only once the user has approved it (project/approvals.ts): cloning a
// repository must not be enough to make Latchkey run its code.
import { dirname, resolve } from "node:path";
import { LatchkeyError, isLatchkeyError, isProviderArgv, parseIsoDateTime } from "@latchkey/core";
import type { Context } from "../context.js";
import { readProviderAnswer } from "../fast-readers.js";
import { redact } from "../output/output.js";
import { authorizeDeclaration, displayQuoted } from "../project/approvals.js";
import { parseJsonTree } from "../project/json-edit.js";
import { nerfDart } from "./nerf-dart.js";
import type { ProviderAnswer, ProviderDeclaration } from "./types.js";

/** How long a provider may take before it is killed, unless LATCHKEY_PROVIDER_TIMEOUT_MS or an option says. */
export const DEFAULT_PROVIDER_TIMEOUT_MS = 10_000;
/** An answer is used until this long before its `expiresAt`, so no request leaves with a token about to lapse. */
export const EXPIRY_MARGIN_MS = 60_000;
/** Set in a provider's environment: how many providers deep the child runs (a provider may itself be Latchkey). */
export const PROVIDER_DEPTH_VARIABLE = "LATCHKEY_PROVIDER_DEPTH";
/** Providers calling providers beyond this depth are refused: a loop (Latchkey as its own provider) ends here. */
export const MAX_PROVIDER_DEPTH = 3;

const MAX_ANSWER_BYTES = 64 * 1024;
const MAX_TIMEOUT_MS = 10 * 60_000;
const STDERR_TAIL = 2000;

/** Options of a provider client. */
export interface ProviderClientOptions {
  /** Overrides LATCHKEY_PROVIDER_TIMEOUT_MS and the 10 s default. */
  readonly timeoutMs?: number;
}

/** Runs credential providers and remembers their answers for this process. */
export interface ProviderClient {
  /**
   * The token `decl` gives for `registryUri`: null when the provider says it has none (exit 1, empty stdout).
   * Throws LK_PROVIDER_NOT_APPROVED for a project provider the user has not approved (or any project provider
   * under CI), LK_PROVIDER_FAILED when the provider fails, times out or answers outside the protocol, and
   * LK_CONFIG_INVALID for a malformed declaration or timeout setting.
   */
  token(decl: ProviderDeclaration, registryUri: string): Promise<ProviderAnswer | null>;
}

interface CachedAnswer {
  readonly answer: ProviderAnswer | null;
  /** Epoch milliseconds after which the answer is asked for again; null = for the life of the process. */
  readonly validUntil: number | null;
}

function providerFailed(decl: ProviderDeclaration, why: string, cause?: unknown): LatchkeyError {
  return new LatchkeyError("LK_PROVIDER_FAILED", {
    message: `The credential provider ${displayArgv(decl.argv)} (declared in ${decl.file}) ${why}.`,
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * The argv as one line a person can check: each argument JSON-quoted, and every invisible or control character
 * (escape sequences, bidirectional overrides, line separators) spelled out, so a project cannot make the
 * approval prompt show something other than what will run.
 */
export function displayArgv(argv: readonly string[]): string {
  return argv.map(displayQuoted).join(" ");
}

function validateDeclaration(decl: ProviderDeclaration): void {
  if (!isProviderArgv(decl.argv)) {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: `The credential provider declared in ${decl.file} is not a non-empty array of non-empty strings.`,
    });
  }
}

function timeoutFrom(ctx: Context, options: ProviderClientOptions): number {
  if (options.timeoutMs !== undefined) return options.timeoutMs;
  const raw = ctx.env.LATCHKEY_PROVIDER_TIMEOUT_MS;
  if (raw === undefined || raw === "") return DEFAULT_PROVIDER_TIMEOUT_MS;
  const value = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(value >= 1 && value <= MAX_TIMEOUT_MS)) {
    throw new LatchkeyError("LK_CONFIG_INVALID", {
      message: `LATCHKEY_PROVIDER_TIMEOUT_MS must be a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS}.`,
    });
  }
  return value;
}

function providerDepth(ctx: Context): number {
  const raw = ctx.env[PROVIDER_DEPTH_VARIABLE];
  return raw !== undefined && /^\d{1,3}$/.test(raw) ? Number(raw) : 0;
}

/**
 * Parses a provider's stdout: exactly one JSON object, in either shape. Latchkey's: `{"token": non-empty string,
 * "expiresAt": ISO-8601 | null}`, both members required. The npm RFC draft's (npm/rfcs#850):
 * `{"_authToken": non-empty string, "expiresAt": unix seconds}`, expiresAt optional; its basic-auth forms are
 * recognised and refused (core's providerAnswerSchema). Throws a plain Error whose message says what is wrong
 * without repeating any of the output, which may hold the token.
 */
export function parseProviderAnswer(stdout: string): ProviderAnswer {
  if (stdout.length > MAX_ANSWER_BYTES) throw new Error("printed more than 64 KiB");
  const text = stdout.trim();
  if (text === "") throw new Error("printed nothing on stdout");
  try {
    parseJsonTree(text);
  } catch {
    throw new Error("printed something that is not one strict JSON document");
  }
  const answer = readProviderAnswer(JSON.parse(text));
  if (!answer.ok) throw new Error(answer.message);
  return answer.value;
}

/**
 * The registry a provider approval is bound to: the URL's scheme and nerf dart (`https://npm.example.com/`), so a
 * respelling of the same URL keeps the approval and any other registry, or the same one over another scheme, does
 * not.
 */
export function approvedRegistry(registryUri: string): string {
  const scheme = /^http:/i.test(registryUri.trim()) ? "http:" : "https:";
  return `${scheme}${nerfDart(registryUri)}`;
}

/**
 * Decides whether a project's provider may run now (project/approvals.ts); a user's provider always may. The
 * approval pins the registry with the argv: the answer goes to that registry, so an approval given for one must
 * not carry over to another the project names later with the same command.
 */
async function authorize(ctx: Context, decl: ProviderDeclaration, registryUri: string): Promise<void> {
  if (decl.declaredIn !== "project") return;
  const command = displayArgv(decl.argv);
  await authorizeDeclaration(ctx, {
    kind: "provider",
    file: decl.file,
    line: decl.line ?? null,
    content: { registry: approvedRegistry(registryUri), argv: [...decl.argv] },
    code: "LK_PROVIDER_NOT_APPROVED",
    subject: `the credential provider ${command}`,
    prompt:
      `a credential provider for ${displayQuoted(registryUri)}:\n  ${command}\n` +
      "It would run as you, with your environment, whenever Latchkey needs that registry's token.",
    question: "Allow this command for this project?",
  });
}

/**
 * A provider client for `ctx`. Its cache lives as long as the client: create one per process (sources.ts keeps
 * one per context), so one provider call serves every request of a command.
 */
export function createProviderClient(ctx: Context, options: ProviderClientOptions = {}): ProviderClient {
  const cache = new Map<string, CachedAnswer>();
  const inflight = new Map<string, Promise<ProviderAnswer | null>>();

  const run = async (decl: ProviderDeclaration, registryUri: string): Promise<CachedAnswer> => {
    const depth = providerDepth(ctx);
    if (depth >= MAX_PROVIDER_DEPTH) {
      throw providerFailed(
        decl,
        `was not run: credential providers are already nested ${depth} deep (a provider that calls itself?)`,
      );
    }
    const timeoutMs = timeoutFrom(ctx, options);
    await authorize(ctx, decl, registryUri);
    const [command, ...args] = decl.argv as [string, ...string[]];
    let result;
    try {
      result = await ctx.spawn(command, [...args, "--registry-uri", registryUri], {
        env: { ...ctx.env, [PROVIDER_DEPTH_VARIABLE]: String(depth + 1) },
        timeoutMs,
        // A relative program path in a declaration means the declaring file's directory, not wherever the
        // command happens to run.
        cwd: dirname(decl.file),
      });
    } catch (cause) {
      throw providerFailed(decl, "could not be started", cause);
    }
    // The provider's own diagnostics, for -v: its stderr is the protocol's channel for them, never its stdout.
    const stderrCause =
      result.stderr.trim() === ""
        ? undefined
        : new Error(`provider stderr: ${redact(result.stderr.trim().slice(-STDERR_TAIL), ctx.env)}`);
    if (result.timedOut) {
      throw providerFailed(decl, `did not answer within ${timeoutMs} ms and was stopped`, stderrCause);
    }
    if (result.code === 1 && result.stdout.trim() === "") return { answer: null, validUntil: null };
    if (result.code !== 0) {
      const how =
        result.code === null
          ? `was killed by ${result.signal ?? "a signal"}`
          : `exited with code ${result.code}`;
      throw providerFailed(decl, how, stderrCause);
    }
    let answer: ProviderAnswer;
    try {
      answer = parseProviderAnswer(result.stdout);
    } catch (error) {
      throw providerFailed(
        decl,
        `${(error as Error).message} (its output is not shown: it may hold the token)`,
        stderrCause,
      );
    }
    if (answer.expiresAt === null) return { answer, validUntil: null };
    const expires = parseIsoDateTime(answer.expiresAt)!;
    const now = ctx.clock.now();
    if (expires <= now)
      throw providerFailed(decl, `answered with a token that expired at ${answer.expiresAt}`);
    // A token that lapses within the margin is used for this request but asked for again next time.
    return { answer, validUntil: expires - EXPIRY_MARGIN_MS };
  };

  return {
    token: async (decl, registryUri) => {
      validateDeclaration(decl);
      const key = JSON.stringify([decl.declaredIn, resolve(decl.file), decl.argv, registryUri]);
      const cached = cache.get(key);
      if (cached !== undefined && (cached.validUntil === null || ctx.clock.now() < cached.validUntil)) {
        return cached.answer;
      }
      let pending = inflight.get(key);
      if (pending === undefined) {
        pending = run(decl, registryUri)
          .then((entry) => {
            cache.set(key, entry);
            return entry.answer;
          })
          .catch((error: unknown) => {
            throw isLatchkeyError(error) ? error : providerFailed(decl, "failed unexpectedly", error);
          })
          .finally(() => inflight.delete(key));
        inflight.set(key, pending);
      }
      return await pending;
    },
  };
}

import { LatchkeyError } from "@latchkey/core";
import type { Context } from "./context.js";

/**
 * Reads a secret the safe ways: a masked prompt when a person is at a terminal, otherwise all of stdin with one
 * trailing newline removed (what `echo` adds). Never from argv.
 */
export async function readSecretInput(ctx: Context, promptMessage: string): Promise<string> {
  if (ctx.stdin.isTTY && ctx.stderr.isTTY) return ctx.prompts.secret(promptMessage);
  const raw = Buffer.from(await ctx.stdin.readAll()).toString("utf8");
  const value = raw.replace(/\r?\n$/, "");
  if (value === "") throw new LatchkeyError("LK_INPUT_EMPTY");
  return value;
}

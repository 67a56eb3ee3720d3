import { LatchkeyError } from "@latchkey/core";
import type { Context } from "./context.js";

/** How {@link readSecretInput} treats an empty value. */
export interface SecretInputOptions {
  /** Accept an empty value without asking (`--allow-empty`). */
  readonly allowEmpty?: boolean;
  /**
   * At a prompt, ask this yes/no question (default no) before accepting an empty answer. Without it an empty
   * answer is refused, as empty stdin is: pressing Enter by mistake must not store or replace anything.
   */
  readonly confirmEmpty?: string;
}

/**
 * Reads a secret the safe ways: a masked prompt when a person is at a terminal, otherwise all of stdin with one
 * trailing newline removed (what `echo` adds). Never from argv. An empty value is refused (LK_INPUT_EMPTY)
 * unless `options` allows it.
 */
export async function readSecretInput(
  ctx: Context,
  promptMessage: string,
  options: SecretInputOptions = {},
): Promise<string> {
  if (ctx.stdin.isTTY && ctx.stderr.isTTY) {
    const answer = await ctx.prompts.secret(promptMessage);
    if (answer !== "" || options.allowEmpty === true) return answer;
    if (options.confirmEmpty !== undefined && (await ctx.prompts.confirm(options.confirmEmpty, false)))
      return answer;
    throw new LatchkeyError("LK_INPUT_EMPTY", {
      message: "Nothing was typed at the prompt, so nothing was stored.",
      hint: "Run the command again and type the value (pass --allow-empty where an empty value is what you mean).",
    });
  }
  const raw = Buffer.from(await ctx.stdin.readAll()).toString("utf8");
  const value = raw.replace(/\r?\n$/, "");
  if (value === "" && options.allowEmpty !== true) throw new LatchkeyError("LK_INPUT_EMPTY");
  return value;
}

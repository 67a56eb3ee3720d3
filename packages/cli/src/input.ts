import fs from "node:fs";
import { resolve } from "node:path";
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

/**
 * Reads a file the user named on the command line (not one under LATCHKEY_HOME, whose catalogue hint would
 * mislead). A missing file says so and where a relative path starts; `alternative` names another way in, such as
 * `-` for stdin.
 */
export async function readUserFile(ctx: Context, path: string, alternative?: string): Promise<Buffer> {
  const absolute = resolve(ctx.cwd, path);
  try {
    // fs.promises at call time: loading node:fs/promises up front would cost every command's start-up.
    return await fs.promises.readFile(absolute);
  } catch (error) {
    const errno = (error as NodeJS.ErrnoException).code;
    throw new LatchkeyError("LK_FILE_IO", {
      message:
        errno === "ENOENT"
          ? `${absolute} does not exist.`
          : `Could not read ${absolute} (${errno ?? "error"}).`,
      hint:
        errno === "ENOENT"
          ? `Check the file's name and directory (a relative path starts at ${ctx.cwd})${alternative === undefined ? "" : `, or ${alternative}`}.`
          : `Check that ${absolute} is a file you may read.`,
      cause: error,
    });
  }
}

// Reading $LATCHKEY_HOME/config.toml, shared by every section's parser (registries, profiles, environments): one
// read and one parse per context, with errors that never quote the file (it may hold a pasted secret).
import { LatchkeyError } from "@latchkey/core";
import type { Context } from "./context.js";
import { readFileSafe } from "./fs/safe-file.js";

/** config.toml is a few hundred bytes; anything this large is not one. */
const MAX_CONFIG_BYTES = 1024 * 1024;

/** The parsed file: `doc` is empty when the file does not exist. */
export interface ConfigToml {
  readonly file: string;
  readonly doc: Record<string, unknown>;
}

const docs = new WeakMap<Context, Promise<ConfigToml>>();

function fileError(file: string, why: string): LatchkeyError {
  return new LatchkeyError("LK_CONFIG_INVALID", {
    message: `Invalid configuration in ${file}: ${why}.`,
    hint: "Fix config.toml at the position named; `latchkey doctor` reports the file's permissions.",
    details: { path: file },
  });
}

/** Reads and parses config.toml once per context (LK_CONFIG_INVALID for a file that is not UTF-8 TOML). */
export function readConfigToml(ctx: Context): Promise<ConfigToml> {
  let pending = docs.get(ctx);
  if (pending === undefined) {
    pending = (async () => {
      const file = ctx.paths.config;
      const bytes = await readFileSafe(file);
      if (bytes === null) return { file, doc: {} };
      if (bytes.length > MAX_CONFIG_BYTES)
        throw fileError(file, `the file is larger than ${MAX_CONFIG_BYTES} bytes`);
      let text: string;
      try {
        text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      } catch {
        throw fileError(file, "it is not valid UTF-8 text");
      }
      // Loaded only when there is a file to parse: most machines have none, and `latchkey token` starts often.
      const { parse, TomlError } = await import("smol-toml");
      try {
        return { file, doc: parse(text) };
      } catch (err) {
        if (err instanceof TomlError) {
          // Only the first line: the rest of smol-toml's message quotes the file.
          const first = err.message.split("\n")[0]!.replace(/\.$/, "");
          throw fileError(`${file}:${err.line}:${err.column}`, `not valid TOML (${first})`);
        }
        throw err;
      }
    })();
    docs.set(ctx, pending);
  }
  return pending;
}

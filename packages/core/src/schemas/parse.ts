/**
 * How the file formats are checked: {@link checkSchema} runs a schema and keeps the first problem as a key path
 * and a sentence, which each reader turns into its own error (LK_CONFIG_INVALID naming the file and key, say).
 * The schemas carry those sentences, so a file's messages are declared with its shape.
 */
import * as z from "zod/mini";
import { isTable } from "./rules.js";

/** The outcome of checking a value against a format: the value as the format reads it, or its first problem. */
export type Checked<T> =
  | { readonly ok: true; readonly value: T }
  | {
      readonly ok: false;
      /** Where the problem is: the keys (and array indexes) from the checked value down; empty for the value itself. */
      readonly path: readonly (string | number)[];
      /** What is wrong, without a final period and without quoting the value (it may be a secret). */
      readonly message: string;
    };

/**
 * Checks `value` against `schema`. Of several problems the first is kept, and an unknown member comes before the
 * others: a misspelt field name is usually the cause of a required field's absence.
 */
export function checkSchema<S extends z.ZodMiniType>(schema: S, value: unknown): Checked<z.output<S>> {
  const result = z.safeParse(schema, value);
  if (result.success) return { ok: true, value: result.data };
  const { issues } = result.error;
  const issue = issues.find((i) => i.code === "unrecognized_keys") ?? issues[0];
  if (issue === undefined) return { ok: false, path: [], message: "invalid" };
  const path = issue.path.map((key) => (typeof key === "number" ? key : String(key)));
  if (issue.code === "unrecognized_keys" && issue.keys[0] !== undefined) path.push(issue.keys[0]);
  return { ok: false, path, message: issue.message };
}

/** Messages of a {@link table}. */
export interface TableMessages {
  /** For a value that is no table; default "expected a table". */
  readonly notTable?: string;
  /** For particular unknown members, instead of the general `unknown field` message. */
  readonly refused?: Readonly<Record<string, string>>;
}

/**
 * A table (TOML) or object (JSON) with no members but `shape`'s. A member outside it is refused as
 * `unknown field "x" (accepted: …)`: a typo must not silently switch a setting off. A TOML date is no table.
 */
export function table<Shape extends z.core.$ZodLooseShape>(shape: Shape, messages: TableMessages = {}) {
  const notTable = messages.notTable ?? "expected a table";
  const accepted = Object.keys(shape).join(", ");
  const unknownField = (key: string) =>
    (Object.hasOwn(messages.refused ?? {}, key) ? messages.refused?.[key] : undefined) ??
    `unknown field ${JSON.stringify(key)} (accepted: ${accepted})`;
  return z.pipe(
    z.custom<Record<string, unknown>>(isTable, { error: notTable }),
    z.strictObject(shape, {
      error: (issue) => (issue.code === "unrecognized_keys" ? unknownField(String(issue.keys[0])) : notTable),
    }),
  );
}

const NON_EMPTY = "expected a non-empty string";

/** A non-empty string; `missing` is the message for an absent one (default: the same as for a wrong type). */
export function nonEmptyString(missing = NON_EMPTY) {
  return z
    .string({ error: (issue) => (issue.input === undefined ? missing : NON_EMPTY) })
    .check(z.minLength(1, { error: NON_EMPTY }));
}

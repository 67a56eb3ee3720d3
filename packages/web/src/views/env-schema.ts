/**
 * A vault's envSchema as the vault view shows it, read-only: the schema the server stores beside the copy, read
 * with core's structure schema (no pattern is compiled or run here: a pattern is the project's text, and a hostile
 * one could hold the tab), and the required keys an environment lacks, by core's checkEnv on the rules' `required`
 * and `default` alone.
 */
import {
  checkEnv,
  checkSchema,
  envSchemaShapeSchema,
  type EnvSchema,
  type VaultDocument,
} from "@latchkey/core";

/** One rule as the view lists it. */
export interface SchemaRow {
  key: string;
  required: boolean;
  format: string | null;
  pattern: string | null;
  /** The default is part of the committed schema, not a vault value; it is shown, masked when secret. */
  default: string | null;
  secret: boolean;
  description: string | null;
}

/** What the view knows of a copy's envSchema. */
export type ReadSchema =
  | { kind: "none" }
  /** The stored schema is not one this dashboard reads (written by another release). */
  | { kind: "unreadable"; problem: string }
  | { kind: "ok"; schema: EnvSchema; rows: SchemaRow[] };

/** Reads the `schema` of a pull answer (null: the copy has none). */
export function readSchema(stored: Record<string, unknown> | null): ReadSchema {
  if (stored === null) return { kind: "none" };
  const checked = checkSchema(envSchemaShapeSchema, stored);
  if (!checked.ok) return { kind: "unreadable", problem: checked.message };
  const schema: EnvSchema = checked.value;
  const rows = Object.entries(schema)
    .map(([key, rule]): SchemaRow => ({
      key,
      required: rule.required === true,
      format: rule.format ?? null,
      pattern: rule.pattern ?? null,
      default: rule.default ?? null,
      secret: rule.secret === true,
      description: rule.description ?? null,
    }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { kind: "ok", schema, rows };
}

/**
 * The keys `schema` requires that `values` (one environment of the document) leaves unset or empty with no
 * default, in schema order.
 */
export function missingRequired(schema: EnvSchema, values: Readonly<Record<string, string>>): string[] {
  const presence: Record<string, EnvSchema[string]> = {};
  for (const [key, rule] of Object.entries(schema)) {
    presence[key] = {
      ...(rule.required === undefined ? {} : { required: rule.required }),
      ...(rule.default === undefined ? {} : { default: rule.default }),
    };
  }
  return checkEnv(presence, values, { applyDefaults: false })
    .violations.filter((v) => v.kind === "missing")
    .map((v) => v.key);
}

/** The environments of a document, in the order the tabs show them: "default" first, then by name. */
export function environmentsOf(document: VaultDocument): string[] {
  return Object.keys(document).sort((a, b) =>
    a === "default" ? -1 : b === "default" ? 1 : a < b ? -1 : a > b ? 1 : 0,
  );
}

/** The keys a tab lists: the environment's keys and the schema's, by name. */
export function keysOf(values: Readonly<Record<string, string>>, schema: EnvSchema | null): string[] {
  const keys = new Set(Object.keys(values));
  if (schema !== null) for (const key of Object.keys(schema)) keys.add(key);
  return [...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

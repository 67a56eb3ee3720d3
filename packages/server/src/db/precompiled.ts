/**
 * Queries built and compiled once, then run with new values: for the statements every request runs (token
 * lookup, pull, push). Building a query with Kysely's builder and compiling it costs more than running it on
 * SQLite; the SQL text of these statements never changes, only their values do. The same fixed texts are what
 * PostgreSQL may keep parsed and planned per connection (postgres.ts sends them as named statements): a bounded set,
 * unlike the SQL the builder makes per call.
 */
import type { Compilable, CompiledQuery, Kysely, QueryResult } from "kysely";
import type { Database } from "./schema.js";

/** A query compiled once per dialect; `run` binds `values` to its slots in order. */
export interface Precompiled<R> {
  run(db: Kysely<Database>, values: readonly unknown[]): Promise<QueryResult<R>>;
}

// A slot stands where a value goes when the query is built; after compiling, each parameter equal to a slot is
// replaced by its value. The text cannot collide with a real value: no caller's value contains a NUL.
const slot = (i: number): string => `\u0000lk-slot-${i}\u0000`;

// The SQL text of every statement compiled here, with a name of its own: one entry per precompile() call and
// dialect, so the map stays as small as the module graph.
const statementNames = new Map<string, string>();

/**
 * The name `sql` may be prepared under when it is the text of a precompiled statement; undefined for any other
 * SQL. Names are unique within the process, and one text always has the same name.
 */
export function statementNameOf(sql: string): string | undefined {
  return statementNames.get(sql);
}

/**
 * Compiles `build(db, slots)` the first time it runs on a dialect and reuses the SQL afterwards. `build` must
 * put every varying value through a slot (the other parameters are kept as built): it is called once per
 * dialect, with `slots` of the type its columns want only in name (each is a placeholder string).
 */
export function precompile<R>(
  slots: number,
  build: (db: Kysely<Database>, slots: readonly string[]) => Compilable<R>,
): Precompiled<R> {
  const names = Array.from({ length: slots }, (_, i) => slot(i));
  const compiled = new WeakMap<object, { query: CompiledQuery<R>; map: (number | undefined)[] }>();
  return {
    async run(db, values) {
      if (values.length !== slots) throw new Error(`precompiled query: ${slots} values expected`);
      // A transaction's Kysely has its own executor but the same adapter: key on the adapter.
      const key = db.getExecutor().adapter;
      let entry = compiled.get(key);
      if (entry === undefined) {
        const query = build(db, names).compile();
        // PostgreSQL keeps these prepared (postgres.ts), and a prepared `select *` fails once a migration adds a
        // column to its table ("cached plan must not change result type"): a process still serving during an
        // upgrade would fail every such query until restarted.
        if (/\bselect \*|\.\*|\breturning \*/i.test(query.sql)) {
          throw new Error("precompiled query: name the columns it reads or returns, not *");
        }
        const map = query.parameters.map((p) => {
          const i = typeof p === "string" ? names.indexOf(p) : -1;
          return i === -1 ? undefined : i;
        });
        if (new Set(map.filter((i) => i !== undefined)).size !== slots) {
          throw new Error("precompiled query: every slot must appear among the parameters");
        }
        entry = { query, map };
        compiled.set(key, entry);
        if (!statementNames.has(query.sql)) statementNames.set(query.sql, `lk_${statementNames.size + 1}`);
      }
      const { query, map } = entry;
      const parameters = query.parameters.map((p, j) => {
        const i = map[j];
        return i === undefined ? p : values[i];
      });
      return await db.executeQuery<R>({ ...query, parameters });
    },
  };
}

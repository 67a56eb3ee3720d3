/**
 * oidc-provider's storage adapter on the server's database (one table, oidc_models, on SQLite and PostgreSQL):
 * every grant, session, interaction, code, token and device code lives there, so any number of server processes
 * on one PostgreSQL share them. The adapter interface is oidc-provider's (docs: "adapter"); payloads are JSON.
 */
import type { Kysely } from "kysely";
import type { Adapter, AdapterPayload } from "oidc-provider";
import type { Database } from "../db/schema.js";

/** Expired rows are removed every this many writes of one process (cheap: the expiry column is indexed). */
const PURGE_EVERY = 500;

/**
 * Builds the adapter class oidc-provider instantiates once per model name. `keepGrantTokens(grantId)` true
 * makes revokeByGrantId leave that grant's access and refresh tokens alone (see provider.ts revokeGrantPolicy).
 */
export function kyselyAdapter(
  db: Kysely<Database>,
  nowSeconds: () => number,
  keepGrantTokens: (grantId: string) => boolean = () => false,
): new (name: string) => Adapter {
  let writes = 0;
  const purge = async (): Promise<void> => {
    await db.deleteFrom("oidc_models").where("expires_at", "<", nowSeconds()).execute();
  };

  return class KyselyAdapter implements Adapter {
    constructor(private readonly name: string) {}

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      const row = {
        payload: JSON.stringify(payload),
        grant_id: payload.grantId ?? null,
        user_code: payload.userCode ?? null,
        uid: payload.uid ?? null,
        expires_at: expiresIn ? nowSeconds() + expiresIn : null,
      };
      await db
        .insertInto("oidc_models")
        .values({ kind: this.name, id, consumed_at: null, ...row })
        .onConflict((oc) => oc.columns(["kind", "id"]).doUpdateSet(row))
        .execute();
      if (++writes % PURGE_EVERY === 0) await purge();
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      return this.one(
        db.selectFrom("oidc_models").selectAll().where("kind", "=", this.name).where("id", "=", id),
      );
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return this.one(
        db
          .selectFrom("oidc_models")
          .selectAll()
          .where("kind", "=", this.name)
          .where("user_code", "=", userCode),
      );
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return this.one(
        db.selectFrom("oidc_models").selectAll().where("kind", "=", this.name).where("uid", "=", uid),
      );
    }

    async consume(id: string): Promise<void> {
      await db
        .updateTable("oidc_models")
        .set({ consumed_at: nowSeconds() })
        .where("kind", "=", this.name)
        .where("id", "=", id)
        .execute();
    }

    async destroy(id: string): Promise<void> {
      await db.deleteFrom("oidc_models").where("kind", "=", this.name).where("id", "=", id).execute();
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      if ((this.name === "AccessToken" || this.name === "RefreshToken") && keepGrantTokens(grantId)) return;
      await db
        .deleteFrom("oidc_models")
        .where("kind", "=", this.name)
        .where("grant_id", "=", grantId)
        .execute();
    }

    private async one(query: {
      executeTakeFirst(): Promise<Database["oidc_models"] | undefined>;
    }): Promise<AdapterPayload | undefined> {
      const row = await query.executeTakeFirst();
      return row ? storedPayload(row, nowSeconds()) : undefined;
    }
  };
}

/**
 * What the adapter's find hands oidc-provider for a stored row: undefined once the row's expiry has passed, the
 * payload otherwise, with `consumed` set when it was consumed. Shared with tokens.ts's authenticate, which
 * reads token rows in a join of its own and must see them exactly as the adapter would.
 */
export function storedPayload(
  row: Pick<Database["oidc_models"], "payload" | "expires_at" | "consumed_at">,
  now: number,
): AdapterPayload | undefined {
  if (row.expires_at !== null && Number(row.expires_at) <= now) return undefined;
  const payload: unknown = JSON.parse(row.payload);
  if (!isPayload(payload)) throw new Error("oidc_models: a stored payload is not a JSON object");
  return row.consumed_at === null ? payload : { ...payload, consumed: row.consumed_at };
}

/**
 * The rows hold what upsert wrote: JSON.stringify of a payload oidc-provider handed over, whose fields are
 * oidc-provider's to read. Its shape is its own business; that it is an object is ours.
 */
function isPayload(value: unknown): value is AdapterPayload {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

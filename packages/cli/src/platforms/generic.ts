// Any HTTPS receiver (docs/platforms.md, "The generic receiver"): one POST of a JSON document per push,
//   {"format": "latchkey-push-v1", "id": "<32 hex>", "timestamp": <unix seconds>, "values": {NAME: value},
//    "remove": [NAME]}
// signed with the connection's secret: `X-Latchkey-Timestamp: <the same unix seconds>` and
// `X-Latchkey-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>`. The timestamp bounds how long a
// captured request can be replayed, the id lets a receiver refuse the same delivery twice within that window. A
// receiver cannot be asked for its names, so a push never removes anything; `values` is always the whole
// environment, which a mirroring receiver may take as the complete set.
import { hmacSha256, toHex, utf8Encode, type GenericConfig } from "@latchkey/core";
import {
  platformRequest,
  type AdapterInput,
  type ApplyPlan,
  type ApplyResult,
  type PlatformAdapter,
} from "./adapter.js";

/** The document's format, for receivers to check first. */
export const GENERIC_FORMAT = "latchkey-push-v1";

/** The signature header's value for `body` sent at `timestamp` (unix seconds). */
export async function signGeneric(secret: string, timestamp: number, body: string): Promise<string> {
  const mac = await hmacSha256(utf8Encode(secret), utf8Encode(`${timestamp}.${body}`));
  return `v1=${toHex(mac)}`;
}

/** A generic adapter for one receiver URL, signing with the connection's secret. */
export function genericAdapter(input: AdapterInput<GenericConfig>): PlatformAdapter {
  const { ctx, config, credential } = input;

  const apply = async (plan: ApplyPlan): Promise<ApplyResult> => {
    const timestamp = Math.floor(ctx.clock.now() / 1000);
    const body = JSON.stringify({
      format: GENERIC_FORMAT,
      id: toHex(ctx.random.bytes(16)),
      timestamp,
      values: plan.upsert,
      remove: plan.remove,
    });
    const signature = await signGeneric(credential, timestamp, body);
    // A retry resends the same id and timestamp: a receiver that already took it answers 2xx or refuses it as a
    // replay, and either way applies it once.
    const response = await platformRequest(ctx, input.verbose ?? 0, {
      platform: "generic",
      url: config.url,
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-latchkey-timestamp": String(timestamp),
        "x-latchkey-signature": signature,
      },
      body,
    });
    await response.arrayBuffer().catch(() => undefined);
    const names = Object.keys(plan.upsert);
    if (response.status >= 200 && response.status <= 299)
      return { written: names, removed: [...plan.remove], failed: [] };
    const reason = `HTTP ${response.status}`;
    return {
      written: [],
      removed: [],
      failed: [...names, ...plan.remove].map((name) => ({ name, reason })),
    };
  };

  return { platform: "generic", listNames: () => Promise.resolve(null), apply, pull: null };
}

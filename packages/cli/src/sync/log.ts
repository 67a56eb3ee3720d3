import { LatchkeyError, MAX_LOG_LIMIT, auditLogResponseSchema, type AuditLogResponse } from "@latchkey/core";
import type { Context } from "../context.js";
import { callApi } from "../server/api.js";
import { findProject } from "../project/project.js";
import { syncVaultId } from "./project.js";
import { vaultPath } from "./push.js";

/** `env log`: the newest audit entries of the project's vault, as many as one answer holds, newest first. */
export async function fetchVaultLog(
  ctx: Context,
  options: { profile?: string; server?: string; verbose?: number } = {},
): Promise<AuditLogResponse & { server: string }> {
  const vaultId = syncVaultId(ctx, await findProject(ctx.cwd));
  const result = await callApi(
    ctx,
    {
      method: "GET",
      path: `${vaultPath(vaultId)}/log?limit=${MAX_LOG_LIMIT}`,
      answer: auditLogResponseSchema,
    },
    {
      verbose: options.verbose ?? 0,
      ...(options.profile === undefined ? {} : { profile: options.profile }),
      ...(options.server === undefined ? {} : { server: options.server }),
    },
  );
  if (result.data.vaultId.toLowerCase() !== vaultId.toLowerCase()) {
    throw new LatchkeyError("LK_SERVER_ERROR", {
      message: `The server answered the audit log of vault ${vaultId} with another vault's.`,
      details: { server: result.server },
    });
  }
  return { vaultId, entries: result.data.entries, server: result.server };
}

import { LatchkeyError, type AuditLogResponse } from "@latchkey/core";
import type { Context } from "../context.js";
import { callApi } from "../server/api.js";
import { findProject } from "../project/project.js";
import { syncVaultId } from "./project.js";
import { vaultPath } from "./push.js";

/** How many audit entries `env log` shows (the server's maximum too). */
export const LOG_LIMIT = 50;

/** `env log`: the newest audit entries of the project's vault, newest first. */
export async function fetchVaultLog(
  ctx: Context,
  options: { profile?: string; server?: string; verbose?: number } = {},
): Promise<AuditLogResponse & { server: string }> {
  const vaultId = syncVaultId(ctx, await findProject(ctx.cwd));
  const result = await callApi<AuditLogResponse>(
    ctx,
    { method: "GET", path: `${vaultPath(vaultId)}/log?limit=${LOG_LIMIT}` },
    {
      verbose: options.verbose ?? 0,
      ...(options.profile === undefined ? {} : { profile: options.profile }),
      ...(options.server === undefined ? {} : { server: options.server }),
    },
  );
  const data = result.data as Partial<AuditLogResponse> | null;
  if (
    typeof data !== "object" ||
    data === null ||
    String(data.vaultId).toLowerCase() !== vaultId.toLowerCase() ||
    !Array.isArray(data.entries)
  ) {
    throw new LatchkeyError("LK_SERVER_ERROR", {
      message: `The server's audit log of vault ${vaultId} does not have the expected fields.`,
      details: { server: result.server },
    });
  }
  return { vaultId, entries: data.entries.slice(0, LOG_LIMIT), server: result.server };
}

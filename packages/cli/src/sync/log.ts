import { LatchkeyError, MAX_LOG_LIMIT, auditLogResponseSchema, type AuditLogResponse } from "@latchkey/core";
import type { Context } from "../context.js";
import { orgVaultPath } from "../org/copy.js";
import { callApi } from "../server/api.js";
import { openOrgSession } from "../org/session.js";
import { findProject } from "../project/project.js";
import { chosenOrg, syncVaultId, type CopyChoice } from "./project.js";
import { vaultPath } from "./push.js";

/**
 * `env log`: the newest audit entries of the project's vault, as many as one answer holds, newest first — of the
 * personal copy, or of organisation `org`'s copy (which needs the maintainer role there).
 */
export async function fetchVaultLog(
  ctx: Context,
  options: CopyChoice & { profile?: string; server?: string; verbose?: number } = {},
): Promise<AuditLogResponse & { server: string; org?: string }> {
  const project = await findProject(ctx.cwd);
  const vaultId = syncVaultId(ctx, project);
  const org = chosenOrg(project, options);
  const selection = {
    verbose: options.verbose ?? 0,
    ...(options.profile === undefined ? {} : { profile: options.profile }),
    ...(options.server === undefined ? {} : { server: options.server }),
  };
  const api = org === undefined ? selection : (await openOrgSession(ctx, selection)).api;
  const path = org === undefined ? vaultPath(vaultId) : orgVaultPath(org, vaultId);
  const result = await callApi(
    ctx,
    { method: "GET", path: `${path}/log?limit=${MAX_LOG_LIMIT}`, answer: auditLogResponseSchema },
    api,
  );
  if (result.data.vaultId.toLowerCase() !== vaultId.toLowerCase()) {
    throw new LatchkeyError("LK_SERVER_ERROR", {
      message: `The server answered the audit log of vault ${vaultId} with another vault's.`,
      details: { server: result.server },
    });
  }
  return {
    vaultId,
    entries: result.data.entries,
    server: result.server,
    ...(org === undefined ? {} : { org }),
  };
}

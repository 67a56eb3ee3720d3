// From a connection's configuration to its adapter: the one place that knows every platform.
import type { PlatformConfig } from "@latchkey/core";
import type { AdapterInput, PlatformAdapter } from "./adapter.js";
import { awsSmAdapter } from "./aws-sm.js";
import { awsSsmAdapter } from "./aws-ssm.js";
import { coolifyAdapter } from "./coolify.js";
import { flyAdapter } from "./fly.js";
import { genericAdapter } from "./generic.js";
import { githubActionsAdapter } from "./github-actions.js";
import { railwayAdapter } from "./railway.js";
import { vercelAdapter } from "./vercel.js";

/** The adapter for a connection, whichever its platform. */
export function createPlatformAdapter(input: AdapterInput<PlatformConfig>): PlatformAdapter {
  const { config } = input;
  switch (config.platform) {
    case "vercel":
      return vercelAdapter({ ...input, config });
    case "fly":
      return flyAdapter({ ...input, config });
    case "github-actions":
      return githubActionsAdapter({ ...input, config });
    case "generic":
      return genericAdapter({ ...input, config });
    case "coolify":
      return coolifyAdapter({ ...input, config });
    case "aws-ssm":
      return awsSsmAdapter({ ...input, config });
    case "aws-sm":
      return awsSmAdapter({ ...input, config });
    case "railway":
      return railwayAdapter({ ...input, config });
  }
}

// Writes docs/environment.md from the CLI's table of environment variables, so the two can never drift apart
// (packages/cli/src/env-vars.test.ts fails when the committed file is stale). The table has no imports, so Node
// runs it straight from the TypeScript source.
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { environmentMarkdown } from "../packages/cli/src/env-vars.ts";

const target = fileURLToPath(new URL("../docs/environment.md", import.meta.url));
await writeFile(target, environmentMarkdown());
console.error(`wrote ${target}`);

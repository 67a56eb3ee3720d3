// Writes docs/errors.md from the catalogue in @latchkey/core, so the two can never drift apart
// (packages/core/src/errors-doc.test.ts fails when the committed file is stale).
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { renderErrorsMarkdown } from "../packages/core/dist/index.js";

const target = fileURLToPath(new URL("../docs/errors.md", import.meta.url));
await writeFile(target, renderErrorsMarkdown());
console.error(`wrote ${target}`);

import { errorCatalogue, type ErrorSpec } from "./errors.js";

const exitNames: Record<number, string> = {
  1: "1 (failure)",
  2: "2 (usage)",
  3: "3 (keystore)",
  4: "4 (integrity)",
  70: "70 (internal)",
};

function cell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

/** Renders docs/errors.md from the catalogue (run `npm run docs` after changing errors.ts). */
export function renderErrorsMarkdown(): string {
  const rows = (Object.entries(errorCatalogue) as [string, ErrorSpec][]).map(
    ([code, spec]) =>
      `| \`${code}\` | ${exitNames[spec.exitCode] ?? String(spec.exitCode)} | ${cell(spec.summary)} | ${cell(spec.hint)} |`,
  );
  return [
    "# Latchkey error codes",
    "",
    "<!-- Generated from packages/core/src/errors.ts by `npm run docs`. Do not edit by hand. -->",
    "",
    "Every error Latchkey prints has a stable code, a message saying what happened, and a hint saying what to do.",
    "Scripts may rely on the codes and exit codes below; messages may be reworded.",
    "",
    "| code | exit code | meaning | hint |",
    "| --- | --- | --- | --- |",
    ...rows,
    "",
  ].join("\n");
}

// Renders the results as the markdown in bench/results/latest.md (also printed to stdout).
import type { Summary } from "./stats.ts";

/** One timed command of a scenario. */
export interface CommandResult {
  readonly label: string;
  /** Context shown after the command, e.g. `10,000-key vault`. */
  readonly detail?: string;
  readonly summary: Summary;
  /** Rounds in which this command ran first. */
  readonly first: number;
}

/** One ratio the table reports: a subject's median over a baseline's (a floor, a peer, or a sum of both). */
export interface ComparisonResult {
  readonly against: string;
  readonly subjectMedian: number;
  readonly baselineMedian: number;
  /** median(subject) / median(baseline). */
  readonly ratio: number;
  /** Median of the per-round ratios (cross-check; rounds are back-to-back pairs). */
  readonly paired: number;
  /** Upper bound on `ratio`; null when the ratio is reported for information only. */
  readonly goal: number | null;
  /**
   * Upper bound on the subject's median in ms, for a goal stated as a time (the ratio is then informational and
   * `goal` null): the baseline still runs beside it, so the table shows what the machine's state was.
   */
  readonly goalMs?: number;
  readonly note?: string;
}

/** A baseline a scenario's subject is compared with: one command, or the per-round sum of several (floor + peer). */
export interface Baseline {
  readonly against: string;
  /** Indices of the baseline's commands among the scenario's (0 is the subject). */
  readonly indices: readonly number[];
  readonly goal: number | null;
  readonly goalMs?: number;
  readonly note?: string;
}

/** A scenario either ran (with its commands and comparisons) or says why it did not. */
export type ScenarioResult =
  | {
      readonly id: number;
      readonly title: string;
      readonly status: "ran";
      readonly commands: readonly CommandResult[];
      readonly comparisons: readonly ComparisonResult[];
    }
  | {
      readonly id: number;
      readonly title: string;
      readonly status: "not-run";
      readonly reason: string;
      readonly goals: readonly {
        readonly against: string;
        readonly goal: number | null;
        readonly goalMs?: number;
      }[];
    };

/** The machine and the settings the numbers were taken with. */
export interface RunInfo {
  readonly date: string;
  readonly nproc: string;
  readonly cpu: string;
  readonly node: string;
  readonly kernel: string;
  readonly loadAverage: string;
  readonly runs: number;
  readonly warmup: number;
  readonly durationSeconds: number;
}

const ms = (n: number): string => n.toFixed(1);
const times = (n: number): string => `${n.toFixed(2)}×`;
const goalText = (c: { goal: number | null; goalMs?: number }): string =>
  c.goalMs !== undefined
    ? `median ≤ ${c.goalMs.toLocaleString("en-US")} ms`
    : c.goal === null
      ? "— (info)"
      : `≤ ${c.goal.toFixed(2)}×`;

/** Whether a comparison met its goal: `yes`, `**no**`, or `—` for an informational ratio. */
export function verdict(c: ComparisonResult): string {
  if (c.goalMs !== undefined) return c.subjectMedian <= c.goalMs ? "yes" : "**no**";
  if (c.goal === null) return "—";
  return c.ratio <= c.goal ? "yes" : "**no**";
}

/** The whole markdown document. */
export function renderMarkdown(results: readonly ScenarioResult[], info: RunInfo): string {
  const lines: string[] = [];
  lines.push("# Latchkey benchmarks", "");
  lines.push(
    `- Date: ${info.date}`,
    `- Machine: \`nproc\` = ${info.nproc}, ${info.cpu}`,
    `- Node: ${info.node} (the same binary runs the CLI and the \`node -e 0\` floor)`,
    `- Kernel: ${info.kernel}`,
    `- Load average at start: ${info.loadAverage}`,
    `- Runs: ${info.runs} timed per command after ${info.warmup} warm-up rounds discarded; each round runs every ` +
      `command of its scenario once, in a fresh random order (node:crypto). Whole process, spawn to exit.`,
    `- Bench wall time: ${info.durationSeconds.toFixed(0)} s`,
    "",
  );

  lines.push("## Ratios", "");
  lines.push(
    "| # | scenario | compared with | scenario median (ms) | baseline median (ms) | ratio | paired ratio | goal | met |",
    "| -: | --- | --- | -: | -: | -: | -: | -: | --- |",
  );
  for (const r of results) {
    if (r.status === "not-run") {
      for (const g of r.goals) {
        lines.push(
          `| ${r.id} | ${r.title} | ${g.against} | — | — | — | — | ${goalText(g)} | not run (${r.reason}) |`,
        );
      }
      continue;
    }
    for (const c of r.comparisons) {
      lines.push(
        `| ${r.id} | ${r.title} | ${c.against} | ${ms(c.subjectMedian)} | ${ms(c.baselineMedian)} | ` +
          `${times(c.ratio)} | ${times(c.paired)} | ${goalText(c)} | ${verdict(c)} |`,
      );
    }
  }
  lines.push("");

  lines.push("## Commands", "");
  lines.push(
    "| # | command | runs | median (ms) | p90 (ms) | min (ms) | max (ms) | ran first |",
    "| -: | --- | -: | -: | -: | -: | -: | -: |",
  );
  for (const r of results) {
    if (r.status === "not-run") {
      lines.push(`| ${r.id} | ${r.title} | 0 | — | — | — | — | not run (${r.reason}) |`);
      continue;
    }
    for (const c of r.commands) {
      const s = c.summary;
      lines.push(
        `| ${r.id} | \`${c.label}\`${c.detail === undefined ? "" : ` (${c.detail})`} | ${s.runs} | ${ms(s.median)} | ${ms(s.p90)} | ${ms(s.min)} | ${ms(s.max)} | ` +
          `${c.first}/${s.runs} |`,
      );
    }
  }
  lines.push("");

  const notes = results.flatMap((r) =>
    r.status === "ran"
      ? r.comparisons.filter((c) => c.note !== undefined).map((c) => `- ${r.id}: ${c.note}`)
      : [],
  );
  if (notes.length > 0) lines.push("## Notes", "", ...notes, "");
  return lines.join("\n");
}

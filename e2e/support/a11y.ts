// Accessibility and layout checks of a dashboard page in Chromium: axe-core's rules (its source from node_modules,
// evaluated in the page), the landmarks and headings a view must have, and whether the document scrolls sideways.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { Page } from "playwright-core";

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** One rule axe found broken, with the elements it names. */
export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  targets: string[];
}

/** What axe reported of a page: every violation, and how many nodes of each impact. */
export interface AxeReport {
  violations: AxeViolation[];
  /** The violations of impact serious or critical (what must be 0). */
  blocking: AxeViolation[];
  /** Counted per impact over every violating node. */
  counts: { critical: number; serious: number; moderate: number; minor: number };
}

/**
 * Runs axe-core on the page as it is (a modal dialog included). The source is evaluated through the DevTools
 * protocol rather than added as a `<script>`: the dashboard's CSP (script-src 'self') refuses an inline script, as
 * it should, and would report the attempt as a violation.
 */
export async function runAxe(page: Page): Promise<AxeReport> {
  const loaded = await page.evaluate(() => typeof (window as { axe?: unknown }).axe !== "undefined");
  if (!loaded) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (...args: unknown[]) => Promise<unknown> } }).axe;
    const result = (await axe.run(document, { resultTypes: ["violations"] })) as {
      violations: {
        id: string;
        impact: string | null;
        help: string;
        nodes: { target: unknown[]; impact: string | null }[];
      }[];
    };
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.map((n) => n.target.map(String).join(" ")),
      impacts: v.nodes.map((n) => n.impact ?? v.impact ?? "minor"),
    }));
  });
  const counts = { critical: 0, serious: 0, moderate: 0, minor: 0 };
  for (const v of violations)
    for (const impact of v.impacts) if (impact in counts) counts[impact as keyof typeof counts]++;
  const report = violations.map(({ impacts: _impacts, ...v }) => v);
  return {
    violations: report,
    blocking: report.filter((v) => v.impact === "serious" || v.impact === "critical"),
    counts,
  };
}

/** The page's landmarks and headings: what a screen reader's landmark and heading lists show. */
export function structureOf(page: Page) {
  return page.evaluate(() => ({
    banner: document.querySelectorAll("header.top").length,
    navigation: document.querySelectorAll("header nav").length,
    main: document.querySelectorAll("main").length,
    h1: [...document.querySelectorAll("h1")].map((h) => (h.textContent ?? "").trim()),
  }));
}

/**
 * How many CSS pixels the document is wider than the viewport (0: no sideways scroll), with the elements that reach
 * past its right edge outside a container that scrolls by itself (what to fix).
 */
export function horizontalOverflow(page: Page): Promise<{ overflow: number; culprits: string[] }> {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const culprits: string[] = [];
    for (const el of document.querySelectorAll("body *")) {
      if (el.getBoundingClientRect().right <= width + 0.5) continue;
      let scroller = el.parentElement;
      while (scroller && scroller !== document.body && getComputedStyle(scroller).overflowX === "visible")
        scroller = scroller.parentElement;
      if (scroller && scroller !== document.body) continue;
      const classes = typeof el.className === "string" && el.className !== "" ? `.${el.className}` : "";
      culprits.push(
        `${el.tagName.toLowerCase()}${classes} right=${Math.round(el.getBoundingClientRect().right)}`,
      );
    }
    return { overflow: document.documentElement.scrollWidth - width, culprits: culprits.slice(0, 10) };
  });
}

/** The narrow and the wide width every view must work at. */
export const WIDTHS = [
  { name: "375", viewport: { width: 375, height: 812 } },
  { name: "1440", viewport: { width: 1440, height: 900 } },
] as const;

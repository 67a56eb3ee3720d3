// Order statistics for a handful of timings. Medians, not means: one slow spawn (a page-cache miss, a scheduler
// hiccup) moves a mean a lot and a median not at all.

/** What the report shows for one command's timed runs, in milliseconds. */
export interface Summary {
  readonly runs: number;
  readonly median: number;
  readonly p90: number;
  readonly min: number;
  readonly max: number;
}

/** The q-quantile (0..1) of sorted samples, nearest-rank, except that the median averages the middle pair. */
function quantile(sorted: readonly number[], q: number): number {
  const n = sorted.length;
  if (q === 0.5 && n % 2 === 0) return ((sorted[n / 2 - 1] ?? 0) + (sorted[n / 2] ?? 0)) / 2;
  const rank = Math.max(1, Math.ceil(q * n));
  return sorted[rank - 1] ?? Number.NaN;
}

/** Summarizes timed runs; throws on an empty list (a scenario that ran nothing is a harness bug). */
export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new Error("summarize: no samples");
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    runs: sorted.length,
    median: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    min: sorted[0] ?? Number.NaN,
    max: sorted[sorted.length - 1] ?? Number.NaN,
  };
}

/**
 * The median of the per-round ratios subject/baseline. Rounds pair one run of each command taken back to back,
 * so this ratio cancels slow drifts (thermal, background load) that both commands shared; the report shows it
 * next to the ratio of medians as a cross-check.
 */
export function pairedRatio(subject: readonly number[], baseline: readonly number[]): number {
  const n = Math.min(subject.length, baseline.length);
  const ratios: number[] = [];
  for (let i = 0; i < n; i++) ratios.push((subject[i] ?? Number.NaN) / (baseline[i] ?? Number.NaN));
  return summarize(ratios).median;
}

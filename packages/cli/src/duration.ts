// Durations as options take them (`--timeout 2m`, `--max-age 24h`): one spelling for every command. No zod and no
// imports: `run --offline` reads its --max-age on the hot path.

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * The milliseconds of `text`, a whole number of 1 to 7 digits (no leading zero) and a unit, `s`, `m`, `h` or `d`
 * (`90s`, `5m`, `24h`, `7d`), or null for anything else. Callers word their own LK_USAGE, naming their option.
 */
export function parseDuration(text: string): number | null {
  const match = /^([1-9][0-9]{0,6})([smhd])$/.exec(text);
  if (match === null) return null;
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

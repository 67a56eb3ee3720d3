// The one check that a zod-free reader (a hot command's, which may not load zod) stands in for its core schema:
// on generated values it accepts exactly what the schema accepts, and reads each accepted value to the same result.
import fc from "fast-check";
import { expect } from "vitest";
import { checkSchema } from "../../src/schemas/parse.js";

/** What a reader answers: its value, or a refusal (the reason is the reader's own). */
export type ReaderOutcome<T> = { ok: true; value: T } | { ok: false };

/**
 * Asserts that `read` and `schema` agree on `runs` values drawn from `values`, and that the draw both accepted and
 * refused more than `atLeast` of them: a generator that only produced one kind would prove nothing.
 */
export function expectReaderAgrees<T>(
  schema: Parameters<typeof checkSchema>[0],
  read: (value: unknown) => ReaderOutcome<T>,
  values: fc.Arbitrary<unknown>,
  { runs, atLeast }: { runs: number; atLeast: number },
): void {
  let accepted = 0;
  let refused = 0;
  fc.assert(
    fc.property(values, (value) => {
      const expected = checkSchema(schema, value);
      const actual = read(value);
      expect(actual.ok, `reader and schema disagree on ${String(JSON.stringify(value))}`).toBe(expected.ok);
      if (actual.ok && expected.ok) {
        expect(actual.value).toEqual(expected.value);
        accepted++;
      } else refused++;
    }),
    { numRuns: runs },
  );
  expect(accepted).toBeGreaterThan(atLeast);
  expect(refused).toBeGreaterThan(atLeast);
}

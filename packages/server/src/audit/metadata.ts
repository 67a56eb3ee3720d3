/** Reading what audit rows store as metadata (JSON chosen by the writer), for the log routes of every slice. */
import { auditMetadataSchema, checkSchema } from "@latchkey/core";

/** An audit row's metadata; a row written by another release in another shape shows as none, not as a failure. */
export function parseMetadata(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return {};
  }
  const checked = checkSchema(auditMetadataSchema, value);
  return checked.ok ? checked.value : {};
}

/**
 * Masking of secret values in a child's output (`latchkey run --mask`): a byte-level Transform that replaces
 * every occurrence of every secret with a fixed replacement, even when a value arrives split across writes.
 *
 * Caveats, by design:
 * - Every non-empty value is masked, however short: a secret `1` or `true` masks every `1` or `true` in the
 *   output. The caller decides which values count as secret; this module does not second-guess it.
 * - Only the exact UTF-8 bytes of a value are caught. A program that prints a secret base64-, URL- or
 *   JSON-escaped, reversed, or one character per line leaks it anyway: masking guards against accidents
 *   (a debug print, an echoed connection string), not against a program that wants to reveal a secret.
 * - Bytes that could still be the start of a secret are held back until the next chunk or the end of the
 *   stream, so output that ends in such a prefix (a prompt, say) shows only once more output or EOF arrives.
 */
import { Transform } from "node:stream";
import type { TransformCallback } from "node:stream";

/** What a masked value is replaced with unless the caller says otherwise. */
export const DEFAULT_MASK = "*****";

/** Secrets as bytes, grouped by first byte so most output positions cost one array lookup. */
interface SecretIndex {
  /** For each first byte, the secrets starting with it, longest first (leftmost-longest matching). */
  readonly byFirstByte: ReadonlyArray<readonly Buffer[] | undefined>;
}

function indexSecrets(secrets: readonly string[]): SecretIndex {
  const unique = new Map<string, Buffer>();
  for (const secret of secrets) {
    if (secret.length === 0) continue;
    const bytes = Buffer.from(secret, "utf8");
    // Distinct strings can encode to the same bytes (lone surrogates become U+FFFD), so dedupe on bytes.
    unique.set(bytes.toString("latin1"), bytes);
  }
  const byFirstByte: Buffer[][] = [];
  for (const bytes of unique.values()) {
    const first = bytes[0] as number;
    (byFirstByte[first] ??= []).push(bytes);
  }
  for (const group of byFirstByte) group?.sort((a, b) => b.length - a.length);
  return { byFirstByte };
}

/**
 * Replaces matches in `data`, scanning left to right and taking the longest secret at each position. Unless
 * `final`, stops at the first position where a secret longer than any settled match still agrees with all the
 * bytes that remain: whether it matches depends on bytes not yet seen. Returns the output and that held tail,
 * which is shorter than the longest secret.
 */
function scan(
  index: SecretIndex,
  replacement: Buffer,
  data: Buffer,
  final: boolean,
): { output: Buffer[]; rest: Buffer } {
  const output: Buffer[] = [];
  const end = data.length;
  let emitted = 0;
  let i = 0;
  scanning: while (i < end) {
    const candidates = index.byFirstByte[data[i] as number];
    if (candidates === undefined) {
      i++;
      continue;
    }
    let matched = 0;
    for (const secret of candidates) {
      const stop = i + secret.length;
      if (stop <= end) {
        if (data.compare(secret, 0, secret.length, i, stop) === 0) {
          matched = secret.length;
          break;
        }
      } else if (!final && data.compare(secret, 0, end - i, i, end) === 0) {
        break scanning;
      }
    }
    if (matched === 0) {
      i++;
      continue;
    }
    if (i > emitted) output.push(data.subarray(emitted, i));
    output.push(replacement);
    i += matched;
    emitted = i;
  }
  if (i > emitted) output.push(data.subarray(emitted, i));
  // Copied so the held tail does not pin the whole (possibly large) chunk in memory.
  return { output, rest: i < end ? Buffer.from(data.subarray(i)) : Buffer.alloc(0) };
}

/**
 * A Transform over bytes that replaces every occurrence of each non-empty `secrets` value (UTF-8) with
 * `replacement`. Where matches overlap, the leftmost wins, and of those starting at one position the longest.
 * A value split across chunks, even inside a multi-byte character, is still caught: the stream holds back
 * only bytes that could begin a secret (fewer than the longest secret's length) and releases them at the end.
 * Work is linear in the output size times the secrets sharing a first byte; history is never rescanned.
 * See the module comment for what masking cannot catch.
 */
export function createMaskingTransform(
  secrets: readonly string[],
  replacement: string = DEFAULT_MASK,
): Transform {
  const index = indexSecrets(secrets);
  const mask = Buffer.from(replacement, "utf8");
  let held: Buffer = Buffer.alloc(0);

  function emit(stream: Transform, data: Buffer, final: boolean): void {
    const { output, rest } = scan(index, mask, data, final);
    held = rest;
    if (output.length > 0) stream.push(output.length === 1 ? output[0] : Buffer.concat(output));
  }

  return new Transform({
    transform(this: Transform, chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
      emit(this, held.length === 0 ? chunk : Buffer.concat([held, chunk]), false);
      callback();
    },
    flush(this: Transform, callback: TransformCallback): void {
      emit(this, held, true);
      callback();
    },
  });
}

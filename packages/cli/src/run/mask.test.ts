import { once } from "node:events";
import type { Transform } from "node:stream";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createMaskingTransform, DEFAULT_MASK } from "./mask.js";

/** Feeds `chunks` through a fresh masking transform and returns everything it produced. */
async function mask(
  secrets: readonly string[],
  chunks: readonly Uint8Array[],
  replacement?: string,
): Promise<Buffer> {
  const transform = createMaskingTransform(secrets, replacement);
  const output: Buffer[] = [];
  transform.on("data", (chunk: Buffer) => output.push(chunk));
  for (const chunk of chunks) transform.write(chunk);
  transform.end();
  await once(transform, "end");
  return Buffer.concat(output);
}

async function maskText(secrets: readonly string[], chunks: readonly string[]): Promise<string> {
  return (
    await mask(
      secrets,
      chunks.map((chunk) => Buffer.from(chunk, "utf8")),
    )
  ).toString("utf8");
}

/**
 * The obviously correct version: the whole input at once, at each position the longest secret that matches
 * there, else one byte.
 */
function referenceMask(secrets: readonly string[], input: Buffer, replacement = DEFAULT_MASK): Buffer {
  const needles = secrets.filter((s) => s.length > 0).map((s) => Buffer.from(s, "utf8"));
  const out: Buffer[] = [];
  let i = 0;
  while (i < input.length) {
    let best: Buffer | undefined;
    for (const needle of needles) {
      const candidate = input.subarray(i, i + needle.length);
      if (candidate.equals(needle) && (best === undefined || needle.length > best.length)) best = needle;
    }
    if (best === undefined) {
      out.push(input.subarray(i, i + 1));
      i++;
    } else {
      out.push(Buffer.from(replacement, "utf8"));
      i += best.length;
    }
  }
  return Buffer.concat(out);
}

/** Writes one chunk and returns what the transform has released so far (without ending it). */
async function released(transform: Transform, chunk: string): Promise<string> {
  await new Promise<void>((resolve, reject) =>
    transform.write(Buffer.from(chunk, "utf8"), (error) => (error ? reject(error) : resolve())),
  );
  const parts: Buffer[] = [];
  for (
    let part: Buffer | null = transform.read() as Buffer | null;
    part !== null;
    part = transform.read() as Buffer | null
  ) {
    parts.push(part);
  }
  return Buffer.concat(parts).toString("utf8");
}

describe("createMaskingTransform", () => {
  it("replaces every occurrence of every secret", async () => {
    expect(await maskText(["hunter2", "tok_abc"], ["pw=hunter2 t=tok_abc again hunter2!"])).toBe(
      "pw=***** t=***** again *****!",
    );
  });

  it("passes output without secrets through unchanged, and works with no secrets at all", async () => {
    expect(await maskText(["hunter2"], ["nothing to see\n"])).toBe("nothing to see\n");
    expect(await maskText([], ["as is"])).toBe("as is");
    expect(await maskText(["", ""], ["empty secrets are ignored"])).toBe("empty secrets are ignored");
  });

  it("uses the given replacement", async () => {
    const output = await mask(["s3cr3t"], [Buffer.from("a s3cr3t b")], "[hidden]");
    expect(output.toString("utf8")).toBe("a [hidden] b");
  });

  it("catches a secret split across chunks, one byte at a time and inside a multi-byte character", async () => {
    const secret = "pässwörd-😀";
    const bytes = Buffer.from(`before ${secret} after`, "utf8");
    const oneByteChunks = [...bytes].map((byte) => Uint8Array.of(byte));
    expect((await mask([secret], oneByteChunks)).toString("utf8")).toBe("before ***** after");
    const emoji = bytes.indexOf(Buffer.from("😀", "utf8"));
    const split = [bytes.subarray(0, emoji + 2), bytes.subarray(emoji + 2)];
    expect((await mask([secret], split)).toString("utf8")).toBe("before ***** after");
  });

  it("prefers the longest secret at a position, and the leftmost of overlapping matches", async () => {
    expect(await maskText(["abc", "abcdef"], ["xabcdefx"])).toBe("x*****x");
    expect(await maskText(["abcdef", "abc"], ["xabcdex"])).toBe("x*****dex");
    expect(await maskText(["abcd", "cdef"], ["abcdef"])).toBe("*****ef");
    // Longest-first must also hold when the longer secret's tail only arrives in a later chunk.
    expect(await maskText(["abc", "abcdef"], ["xab", "cd", "efx"])).toBe("x*****x");
    expect(await maskText(["abc", "abcdef"], ["xab", "cd", "eZ"])).toBe("x*****deZ");
  });

  it("releases a held prefix at the end of the stream", async () => {
    expect(await maskText(["secret"], ["the end: secr"])).toBe("the end: secr");
  });

  it("holds back only bytes that could start a secret, never more than the longest secret minus one", async () => {
    const transform = createMaskingTransform(["abcdef", "xyz"]);
    // Nothing here could begin a secret: a prompt is released at once.
    expect(await released(transform, "Password: ")).toBe("Password: ");
    expect(await released(transform, "12abcde")).toBe("12");
    expect(await released(transform, "Q")).toBe("abcdeQ");
    expect(await released(transform, "--abcdef--x")).toBe("--*****--");
    transform.end();
    const tail: Buffer[] = [];
    for await (const chunk of transform) tail.push(chunk as Buffer);
    expect(Buffer.concat(tail).toString("utf8")).toBe("x");
  });

  it("does work linear in the stream length when a value repeats and nearly matches everywhere", async () => {
    const secret = `${"a".repeat(200)}b`;
    const chunk = Buffer.alloc(64 * 1024, "a");
    /** How many byte-range comparisons (Buffer#compare, the scan's one) masking `n` such chunks makes. */
    const comparisons = async (n: number): Promise<number> => {
      const compare = Buffer.prototype.compare;
      let calls = 0;
      Buffer.prototype.compare = function (this: Buffer, ...args: Parameters<Buffer["compare"]>) {
        calls++;
        return compare.apply(this, args);
      };
      try {
        const output = await mask(
          [secret],
          Array.from({ length: n }, () => chunk),
        );
        expect(output.length).toBe(n * chunk.length);
      } finally {
        Buffer.prototype.compare = compare;
      }
      return calls;
    };
    const eight = await comparisons(8);
    const sixteen = await comparisons(16);
    // Every position but the last few is a near-miss worth one comparison: the count sees the scan.
    expect(eight).toBeGreaterThanOrEqual(8 * chunk.length - secret.length);
    // Twice the stream, twice the work (give or take the held tails); rescanning what was already seen would
    // make it nearly four times.
    expect(sixteen).toBeLessThanOrEqual(2 * eight + 16 * secret.length);
  });

  // Secrets from a small alphabet with multi-byte characters so that they overlap, prefix each other and get
  // split inside characters; no `*`, so a replacement can never complete a secret.
  const alphabet = fc.constantFrom("a", "b", "é", "€", "😀", "\n");
  const secretArb = fc.string({ unit: alphabet, minLength: 0, maxLength: 6 });

  it("matches the whole-buffer reference for random secrets, texts and chunk boundaries", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(secretArb, { minLength: 1, maxLength: 5 }),
        fc.array(fc.oneof(fc.string({ unit: alphabet, maxLength: 8 }), fc.nat()), { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        async (secrets, pieces, cuts) => {
          const text = pieces
            .map((piece) => (typeof piece === "number" ? (secrets[piece % secrets.length] as string) : piece))
            .join("");
          const input = Buffer.from(text, "utf8");
          const positions = [...new Set(cuts.map((cut) => cut % (input.length + 1)))].sort((a, b) => a - b);
          const chunks: Buffer[] = [];
          let start = 0;
          for (const position of [...positions, input.length]) {
            chunks.push(input.subarray(start, position));
            start = position;
          }
          const output = await mask(secrets, chunks);
          expect(output.equals(referenceMask(secrets, input))).toBe(true);
          for (const secret of secrets) {
            if (secret.length > 0) expect(output.includes(Buffer.from(secret, "utf8"))).toBe(false);
          }
        },
      ),
      { numRuns: 2_000 },
    );
  });
});

import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { descriptorOutput, type DescriptorOutputDeps } from "./node-context.js";

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(code), { code });
}

/** A descriptor that accepts `accept` bytes per call (then throws `then`), and a stream that records. */
function harness(script: { accept: number; then?: string }[], terminal = false) {
  const direct: string[] = [];
  const streamed: string[] = [];
  let streams = 0;
  let terminalAsked = 0;
  const sink = new PassThrough();
  sink.on("data", (d: Buffer) => streamed.push(d.toString("utf8")));
  const deps: DescriptorOutputDeps = {
    fd: 1,
    writeSync: (_fd, bytes) => {
      const step = script.shift() ?? { accept: Number.POSITIVE_INFINITY };
      if (step.then !== undefined && step.accept === 0) throw errno(step.then);
      const n = Math.min(step.accept, bytes.length);
      direct.push(bytes.subarray(0, n).toString("utf8"));
      return n;
    },
    isTerminal: () => {
      terminalAsked++;
      return terminal;
    },
    stream: () => {
      streams++;
      return Object.assign(sink, { isTTY: true });
    },
  };
  return {
    out: descriptorOutput(deps),
    direct,
    streamed,
    streams: () => streams,
    asked: () => terminalAsked,
  };
}

describe("descriptorOutput", () => {
  it("writes to the descriptor without building the stream", () => {
    const h = harness([]);
    h.out.write("one\n");
    h.out.write("twö\n");
    expect(h.direct.join("")).toBe("one\ntwö\n");
    expect(h.streams()).toBe(0);
  });

  it("finishes a short write with further writes", () => {
    const h = harness([{ accept: 2 }, { accept: 1 }]);
    h.out.write("abcdef");
    expect(h.direct).toEqual(["ab", "c", "def"]);
    expect(h.streams()).toBe(0);
  });

  it("hands the rest to the stream on EAGAIN, and every later write too, in order", () => {
    const h = harness([{ accept: 3 }, { accept: 0, then: "EAGAIN" }]);
    h.out.write("abcdef");
    h.out.write("ghi");
    expect(h.direct.join("")).toBe("abc");
    expect(h.streamed.join("")).toBe("defghi");
    expect(h.streams()).toBe(1);
    // Once streaming, the stream answers isTTY.
    expect(h.out.isTTY).toBe(true);
    expect(h.asked()).toBe(0);
  });

  it("drops everything after EPIPE without building the stream", () => {
    const h = harness([{ accept: 0, then: "EPIPE" }]);
    h.out.write("lost\n");
    h.out.write("also lost\n");
    expect(h.direct).toEqual([]);
    expect(h.streamed).toEqual([]);
    expect(h.streams()).toBe(0);
  });

  it("answers isTTY from the descriptor, once, without building the stream", () => {
    const h = harness([], true);
    expect(h.out.isTTY).toBe(true);
    expect(h.out.isTTY).toBe(true);
    expect(h.asked()).toBe(1);
    expect(h.streams()).toBe(0);
    expect(harness([], false).out.isTTY).toBe(false);
  });
});

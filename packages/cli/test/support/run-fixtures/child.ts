/**
 * The program `latchkey run` starts in the run tests, run as `node child.ts` (Node strips the types). Its
 * arguments are steps, done in order:
 * - `out:TEXT` / `err:TEXT`: write TEXT to stdout / stderr.
 * - `outenv:NAME:FROM:TO` / `errenv:NAME:FROM:TO`: write bytes FROM..TO of the UTF-8 value of $NAME, so a test
 *   can split a secret across writes (even inside a character) without putting it in this program's argv.
 * - `sleep:MS`: wait, so the previous write reaches the reader as its own chunk.
 * - `env`: print the whole environment as JSON.
 * - `cmdline`: print this process's /proc/self/cmdline as a JSON array.
 * - `pid`: print this process's pid.
 * - `fd:N`: print what descriptor N is (`file`, `fifo`, `socket`, `tty`, `other`).
 * - `cat`: copy stdin to stdout until EOF.
 * - `trap:SIG,SIG`: catch those signals, print `ready`, then wait; on a signal print `got SIG` and exit 0.
 * - `kill:SIG`: send SIG to itself (and wait to die).
 * - `flood`: write to stdout until a write fails; exit 32 (EPIPE's errno) if the pipe was broken.
 * - `exit:N`: exit with status N.
 */
import { fstatSync, readFileSync } from "node:fs";
import { isatty } from "node:tty";
import { setTimeout as sleep } from "node:timers/promises";

function write(stream: NodeJS.WritableStream, data: string | Uint8Array): Promise<void> {
  return new Promise((resolve, reject) =>
    stream.write(data, (error?: Error | null) => (error ? reject(error) : resolve())),
  );
}

function envSlice(rest: string): Buffer {
  const [name = "", from, to] = rest.split(":");
  return Buffer.from(process.env[name] ?? "", "utf8").subarray(Number(from), Number(to));
}

function describeFd(fd: number): string {
  if (isatty(fd)) return "tty";
  const stat = fstatSync(fd);
  if (stat.isFile()) return "file";
  if (stat.isFIFO()) return "fifo";
  if (stat.isSocket()) return "socket";
  return "other";
}

for (const step of process.argv.slice(2)) {
  const colon = step.indexOf(":");
  const op = colon === -1 ? step : step.slice(0, colon);
  const rest = colon === -1 ? "" : step.slice(colon + 1);
  switch (op) {
    case "out":
      await write(process.stdout, rest);
      break;
    case "err":
      await write(process.stderr, rest);
      break;
    case "outenv":
      await write(process.stdout, envSlice(rest));
      break;
    case "errenv":
      await write(process.stderr, envSlice(rest));
      break;
    case "sleep":
      await sleep(Number(rest));
      break;
    case "env":
      await write(process.stdout, `${JSON.stringify(process.env)}\n`);
      break;
    case "cmdline": {
      const args = readFileSync("/proc/self/cmdline", "utf8").split("\0").slice(0, -1);
      await write(process.stdout, `${JSON.stringify(args)}\n`);
      break;
    }
    case "pid":
      await write(process.stdout, `${process.pid}\n`);
      break;
    case "fd":
      await write(process.stdout, `${describeFd(Number(rest))}\n`);
      break;
    case "cat":
      for await (const chunk of process.stdin) await write(process.stdout, chunk as Buffer);
      break;
    case "trap": {
      for (const signal of rest.split(",")) {
        process.on(signal, () => {
          process.stdout.write(`got ${signal}\n`, () => process.exit(0));
        });
      }
      // Keeps the event loop alive until a signal arrives.
      setInterval(() => {}, 60_000);
      await write(process.stdout, "ready\n");
      await new Promise(() => {});
      break;
    }
    case "kill": {
      // Node ignores SIGPIPE; adding and removing a listener restores the default action (see src/run/child.ts).
      const noop = () => {};
      if (rest !== "SIGKILL") process.on(rest, noop).off(rest, noop);
      process.kill(process.pid, rest);
      await sleep(10_000);
      break;
    }
    case "flood": {
      // A socket pair (Node's 'pipe') closed with unread data reports ECONNRESET rather than EPIPE.
      const broken = (error: NodeJS.ErrnoException): never =>
        process.exit(["EPIPE", "ECONNRESET"].includes(error.code ?? "") ? 32 : 1);
      process.stdout.on("error", broken);
      const chunk = Buffer.alloc(64 * 1024, "y");
      try {
        for (;;) await write(process.stdout, chunk);
      } catch (error) {
        broken(error as NodeJS.ErrnoException);
      }
      break;
    }
    case "exit":
      process.exit(Number(rest));
      break;
    default:
      throw new Error(`unknown step ${step}`);
  }
}

// Runs a `latchkey completion` script in a real shell and reads back what it offers, for the unit suite
// (completion.test.ts) and the end-to-end one (e2e/completion.test.ts):
// - bash: the script sourced and its function called the way bash calls it (COMP_LINE, COMP_POINT, COMP_WORDS,
//   COMP_CWORD, and readline's word as $2), then COMPREPLY read back;
// - fish: `complete -C LINE`, fish's own completion engine;
// - zsh: its completion builtins only run inside the line editor, so compadd, _describe, _files and _normal are
//   replaced by recorders (with the IPREFIX compset moved aside); `<files>` and `<line N: …>` mark a hand-over.
import { spawnSync } from "node:child_process";

/** The shells `latchkey completion` supports, with how to start each without the user's startup files. */
export const COMPLETION_SHELLS = {
  bash: ["bash", "--norc", "--noprofile"],
  zsh: ["zsh", "-f"],
  fish: ["fish", "--no-config"],
} as const;
/** One of COMPLETION_SHELLS. */
export type CompletionShell = keyof typeof COMPLETION_SHELLS;

/**
 * The shells found on this machine. Under CI=true a missing one throws: .ci/run installs all three, and a suite
 * that skipped would prove nothing.
 */
export function availableShells(): CompletionShell[] {
  return (Object.keys(COMPLETION_SHELLS) as CompletionShell[]).filter((shell) => {
    const [command, ...args] = COMPLETION_SHELLS[shell];
    const found = spawnSync(command, [...args, "-c", "exit 0"], { stdio: "ignore" }).status === 0;
    if (!found) {
      if (process.env.CI === "true") throw new Error(`${shell} is required under CI=true`);
      console.warn(`skipping the ${shell} completion cases: ${shell} not found`);
    }
    return found;
  });
}

const BASH_DRIVER = `source "$1"
COMP_LINE=$2
COMP_POINT=\${#COMP_LINE}
shift 2
COMP_WORDS=("$@")
COMP_CWORD=$((\${#COMP_WORDS[@]} - 1))
_latchkey latchkey "$RL_WORD" "$RL_PREV"
printf '%s\\n' "\${COMPREPLY[@]}"
`;

const ZSH_DRIVER = `compdef() { : }
_describe() { local x; for x in "\${(@P)4}"; do print -r -- "$IPREFIX\${x%%:*}"; done }
compadd() {
  local x
  if [[ $1 == -a ]]; then for x in "\${(@P)2}"; do print -r -- "$IPREFIX$x"; done
  else shift; for x in "$@"; do print -r -- "$IPREFIX$x"; done; fi
}
compset() { [[ $1 == -P && \${words[CURRENT]} == *=* ]] && IPREFIX=\${words[CURRENT]%%=*}= }
_files() { print -r -- "$IPREFIX<files>" }
_normal() { print -r -- "<line $CURRENT: \${words[*]}>" }
source "$1"
shift
IPREFIX=''
words=("$@")
CURRENT=$#
_latchkey
`;

/** What bash's own split makes of a line: COMP_WORDS (':' and '=' are words of their own) and readline's word. */
function bashWords(line: string): { words: string[]; word: string } {
  const words = line.split(/\s+/).flatMap((w) => w.split(/([:=])/).filter((p) => p !== ""));
  if (/\s$/.test(line) || line === "") words.push("");
  return { words, word: /[^\s:=]*$/.exec(line)![0] };
}

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "");
}

/**
 * Completes `line`, the cursor at its end, with `script` loaded in `shell`, and returns the whole words offered as
 * they would then read on the line: bash's replies are put back behind the part of the word bash cut off at ':'
 * or '=', zsh's are filtered by the word typed as compadd would, fish's lose their descriptions. Throws when the
 * shell writes to stderr.
 */
export function completeLine(
  shell: CompletionShell,
  script: string,
  line: string,
  options: { cwd: string; env: NodeJS.ProcessEnv },
): string[] {
  const [command, ...args] = COMPLETION_SHELLS[shell];
  const fullWord = /\S*$/.exec(line)![0];
  let result;
  if (shell === "bash") {
    const { words, word } = bashWords(line);
    result = spawnSync(command, [...args, "-c", BASH_DRIVER, "bash", script, line, ...words], {
      cwd: options.cwd,
      env: { ...options.env, RL_WORD: word, RL_PREV: words.at(-2) ?? "" },
      encoding: "utf8",
    });
    const cut = fullWord.slice(0, fullWord.length - word.length);
    if (result.stderr !== "") throw new Error(`bash: ${result.stderr}`);
    return lines(result.stdout).map((w) => cut + w);
  }
  if (shell === "zsh") {
    result = spawnSync(command, [...args, "-c", ZSH_DRIVER, "zsh", script, ...line.split(/\s+/)], {
      cwd: options.cwd,
      env: options.env,
      encoding: "utf8",
    });
    if (result.stderr !== "") throw new Error(`zsh: ${result.stderr}`);
    return lines(result.stdout).filter((w) => w.includes("<") || w.startsWith(fullWord));
  }
  result = spawnSync(command, [...args, "-c", `source "$argv[1]"; complete -C "$argv[2]"`, script, line], {
    cwd: options.cwd,
    env: options.env,
    encoding: "utf8",
  });
  if (result.stderr !== "") throw new Error(`fish: ${result.stderr}`);
  return lines(result.stdout).map((w) => w.split("\t")[0]!);
}

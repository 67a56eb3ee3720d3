// `latchkey completion bash|zsh|fish`: a completion script generated from the commander tree itself, so a new
// command or flag completes without anyone keeping a list. The script holds the commands and flags of the
// version that printed it; what only the user's own state knows (the environments of the project's vault, the
// registries in config) it asks of the hidden `latchkey __complete SOURCE` at the moment of completion, as gh and
// other cobra programs do. That command prints names only, never a secret value.
//
// The three scripts share one design: tables per command path (subcommands, flags, which flags take a value,
// where each value comes from) and a small walker that reads the words before the cursor as commander would:
// flags and their values are skipped, `--` ends the flags, a subcommand is recognised only before the first
// argument, and an argument that takes the rest of the line (`run`'s program) hands completion to that program.
import type { Argument, Command, Option } from "commander";
import { LatchkeyError } from "@latchkey/core";
import type { Context } from "../context.js";
import { printError } from "../output/output.js";
import { loadRegistryConfigs, readLoginRecords } from "../registry/config.js";
import { DEFAULT_ENVIRONMENT } from "../vault/names.js";
import { environmentNames } from "./env.js";
import { canonicalRegistryUrl } from "./registry.js";

/** The shells `latchkey completion` writes a script for. */
export const SHELLS = ["bash", "zsh", "fish"] as const;
/** One of SHELLS. */
export type Shell = (typeof SHELLS)[number];

/** What `latchkey __complete` can list: names of the user's own things, read at completion time. */
export const DYNAMIC_SOURCES = ["envs", "registries"] as const;
/** One of DYNAMIC_SOURCES. */
export type DynamicSource = (typeof DYNAMIC_SOURCES)[number];

/** Where the values of a flag or an argument come from. */
export type ValueSource =
  | { readonly kind: "none" }
  | { readonly kind: "choices"; readonly values: readonly string[] }
  | { readonly kind: "dynamic"; readonly source: DynamicSource }
  | { readonly kind: "files" }
  /** The rest of the line is another program's command line (`run`, `exec`). */
  | { readonly kind: "commandline" };

/** A flag as the scripts know it. */
export interface CompletionFlag {
  readonly names: readonly string[];
  readonly description: string;
  readonly takesValue: boolean;
  readonly values: ValueSource;
}

/** One command of the tree, by its path of names from the program ("" for the program itself). */
export interface CompletionCommand {
  readonly path: string;
  readonly subcommands: readonly { name: string; aliases: readonly string[]; description: string }[];
  readonly flags: readonly CompletionFlag[];
  /** Where each positional argument's values come from, in order. */
  readonly args: readonly ValueSource[];
  /** The index of the argument that takes every remaining word, or -1. */
  readonly variadic: number;
}

const NONE: ValueSource = { kind: "none" };
// Everything the scripts embed as a bare word (names, flags, choices) must be this plain, so no quoting can go
// wrong in any of the three shells; a name outside it is a bug in the tree, caught by the tests.
const PLAIN = /^[A-Za-z0-9][A-Za-z0-9._-]*$|^--?[A-Za-z0-9][A-Za-z0-9._-]*$/;

function plain(word: string): string {
  if (!PLAIN.test(word))
    throw new Error(`Completion cannot embed ${JSON.stringify(word)}: not a plain word.`);
  return word;
}

function oneLine(text: string): string {
  const line = (text.split("\n")[0] ?? "").trim();
  return line.length > 90 ? `${line.slice(0, 89)}…` : line;
}

function placeholder(option: Option): string | null {
  return (
    /<([^>]+)>|\[([^\]]+)\]/
      .exec(option.flags)
      ?.slice(1)
      .find((g) => g !== undefined) ?? null
  );
}

/**
 * Where a flag's values come from, derived from the flag itself: its declared choices; a file for a `<file>`
 * placeholder; the configured registries for `--registry` / `--registry-uri` (the CLI's one spelling of a registry
 * URL); the vault's environments for an `--env` whose default is the vault's default environment (auth's `--env`
 * names a service environment of config.toml instead, and has no such default).
 */
function flagValues(option: Option): ValueSource {
  if (option.argChoices !== undefined) return { kind: "choices", values: option.argChoices.map(plain) };
  if (option.long === "--registry" || option.long === "--registry-uri") {
    return { kind: "dynamic", source: "registries" };
  }
  if (option.long === "--env" && option.defaultValue === DEFAULT_ENVIRONMENT) {
    return { kind: "dynamic", source: "envs" };
  }
  return placeholder(option) === "file" ? { kind: "files" } : NONE;
}

function argumentValues(argument: Argument): ValueSource {
  if (argument.argChoices !== undefined) return { kind: "choices", values: argument.argChoices.map(plain) };
  if (argument.name() === "command" && argument.variadic) return { kind: "commandline" };
  return argument.name() === "file" ? { kind: "files" } : NONE;
}

/** The tree as the scripts see it: every visible command, flag and argument (hidden ones are left out). */
export function completionTree(program: Command): CompletionCommand[] {
  const help = program.createHelp();
  const out: CompletionCommand[] = [];
  const walk = (command: Command, path: string, helpFor: readonly string[] | null): void => {
    const subcommands = help.visibleCommands(command);
    const names = subcommands.map((c) => plain(c.name()));
    if (helpFor !== null) {
      // `help`'s arguments name a command; only the first is offered, from the commands beside it.
      out.push({
        path,
        subcommands: [],
        flags: [],
        args: [{ kind: "choices", values: helpFor }],
        variadic: -1,
      });
      return;
    }
    out.push({
      path,
      subcommands: subcommands.map((c) => ({
        name: c.name(),
        aliases: c.aliases().map(plain),
        description: oneLine(c.description()),
      })),
      flags: help.visibleOptions(command).map((option) => ({
        names: [option.short, option.long].filter((n): n is string => n !== undefined).map(plain),
        description: oneLine(option.description),
        takesValue: option.required || option.optional,
        values: flagValues(option),
      })),
      args: command.registeredArguments.map(argumentValues),
      variadic: command.registeredArguments.findIndex((a) => a.variadic),
    });
    for (const sub of subcommands) {
      walk(sub, path === "" ? sub.name() : `${path} ${sub.name()}`, sub.name() === "help" ? names : null);
    }
  };
  walk(program, "", null);
  return out;
}

function sourceWord(values: ValueSource): string {
  switch (values.kind) {
    case "none":
      return "";
    case "choices":
      return `choices ${values.values.join(" ")}`;
    case "dynamic":
      return `dynamic ${values.source}`;
    default:
      return values.kind;
  }
}

/** Every (path, key) → source pair, where key is a flag name or `#N` for argument N; "none" pairs are left out. */
function valueTable(tree: readonly CompletionCommand[]): [string, string][] {
  const rows: [string, string][] = [];
  for (const command of tree) {
    for (const flag of command.flags) {
      const word = sourceWord(flag.values);
      if (flag.takesValue && word !== "")
        for (const name of flag.names) rows.push([`${command.path}|${name}`, word]);
    }
    command.args.forEach((values, index) => {
      const word = sourceWord(values);
      if (word !== "") rows.push([`${command.path}|#${index}`, word]);
    });
  }
  return rows;
}

/** The alias → name pairs of every command path that has aliases. */
function aliasTable(tree: readonly CompletionCommand[]): [string, string][] {
  return tree.flatMap((command) =>
    command.subcommands.flatMap((sub) =>
      sub.aliases.map((alias): [string, string] => [`${command.path}|${alias}`, sub.name]),
    ),
  );
}

const quoteSh = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;
const quoteFish = (text: string): string => `'${text.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;

function names(command: CompletionCommand): { commands: string[]; flags: string[]; valueFlags: string[] } {
  return {
    commands: command.subcommands.flatMap((s) => [s.name, ...s.aliases]),
    flags: command.flags.flatMap((f) => f.names),
    valueFlags: command.flags.filter((f) => f.takesValue).flatMap((f) => f.names),
  };
}

/** The subcommand and flag names of `command`, each joined to its description by `described`. */
function describedNames(
  command: CompletionCommand,
  described: (name: string, description: string) => string,
): { cmds: string[]; opts: string[] } {
  return {
    cmds: command.subcommands.flatMap((s) =>
      [s.name, ...s.aliases].map((name) => described(name, s.description)),
    ),
    opts: command.flags.flatMap((f) => f.names.map((name) => described(name, f.description))),
  };
}

const HEADER = (shell: Shell, load: string, version: string): string =>
  `# ${shell} completion for latchkey ${version}, generated by \`latchkey completion ${shell}\` from its command tree.\n` +
  `# Load it with: ${load}\n` +
  "# Saved to a file instead, it keeps this version's commands and flags: generate it again after an upgrade.\n" +
  "# Environment names and registry URLs are asked of `latchkey __complete` when they are completed.\n";

// The walker, in each shell's syntax. Each reads: __latchkey_spec PATH (sets the command's names, flags, value
// flags, argument count and variadic index), __latchkey_values PATH KEY (sets REPLY / prints the value source) and
// __latchkey_name PATH WORD (the command a word names, through aliases).

/**
 * The table functions of the bash and zsh scripts, whose syntax they share: `spec` holds the case arms of
 * __latchkey_spec (each shell sets its own variables, so its own kind of them), `specDefault` what it sets for
 * an unknown path.
 */
function shTables(tree: readonly CompletionCommand[], spec: string, specDefault: string): string {
  const arm = ([key, value]: [string, string]): string => `    ${quoteSh(key)}) REPLY=${quoteSh(value)} ;;`;
  return `__latchkey_spec() {
  case "$1" in
${spec}
    *) ${specDefault} ;;
  esac
}

__latchkey_values() {
  case "$1|$2" in
${valueTable(tree).map(arm).join("\n")}
    *) REPLY='' ;;
  esac
}

__latchkey_name() {
  case "$1|$2" in
${aliasTable(tree).map(arm).join("\n")}
    *) REPLY=$2 ;;
  esac
}
`;
}

/** What the bash and zsh walkers do each in their own way; the rest of the walk is the same text. */
interface ShWalkParts {
  /** The loop over the words before the cursor, up to `do`. */
  loop: string;
  /** Sets w to word i. */
  word: string;
  /** True when the flag $w takes its value in the next word. */
  isValueFlag: string;
  /** True when $w names a subcommand here. */
  isCommand: string;
  /** Why the script does what `commandline` does. */
  commandlineNote: string;
  /** The lines, indented, that complete when the rest of the line is another program's (`return` follows). */
  commandline: string;
  /** The first line after the loop. */
  afterLoop: string;
}

/**
 * The walk of the words before the cursor in bash or zsh syntax, up to the first case of the word under it (a
 * flag's value), which each script continues with an `elif`.
 */
function shWalk(parts: ShWalkParts): string {
  return `  __latchkey_spec ''
  ${parts.loop}
    ${parts.word}
    if [[ -n $expect ]]; then
      expect=''
    elif ((!dashdash)) && [[ $w == -?* ]]; then
      if [[ $w == -- ]]; then
        dashdash=1
      elif ${parts.isValueFlag}; then
        expect=$w
      fi
    elif ${parts.isCommand}; then
      __latchkey_name "$cpath" "$w"
      cpath=\${cpath:+$cpath }$REPLY
      __latchkey_spec "$cpath"
    else
      p=$pos
      ((variadic >= 0 && p > variadic)) && p=$variadic
      __latchkey_values "$cpath" "#$p"
      # ${parts.commandlineNote}
      if [[ $REPLY == commandline ]]; then
${parts.commandline}
        return
      fi
      pos=$((pos + 1))
    fi
  done
  ${parts.afterLoop}
  p=$pos
  ((variadic >= 0 && p > variadic)) && p=$variadic
  if [[ -n $expect ]]; then
    __latchkey_values "$cpath" "$expect"
    src=$REPLY`;
}

function bashScript(tree: readonly CompletionCommand[], version: string): string {
  const spec = tree
    .map((command) => {
      const n = names(command);
      return (
        `    ${quoteSh(command.path)}) cmds=${quoteSh(n.commands.join(" "))} opts=${quoteSh(n.flags.join(" "))}` +
        ` vopts=${quoteSh(n.valueFlags.join(" "))} nargs=${command.args.length} variadic=${command.variadic} ;;`
      );
    })
    .join("\n");
  return `${HEADER("bash", "source <(latchkey completion bash)   (in ~/.bashrc)", version)}
${shTables(tree, spec, "cmds='' opts='' vopts='' nargs=0 variadic=-1")}
_latchkey() {
  # The words come from the line itself: bash splits COMP_WORDS at ':' and '=' too, which cuts URLs apart.
  local line=\${COMP_LINE:0:COMP_POINT}
  local -a words
  read -r -a words <<<"$line"
  if [[ -z $line || $line == *[[:space:]] ]]; then words+=(''); fi
  local cur=\${words[\${#words[@]}-1]}
  local cpath='' pos=0 expect='' dashdash=0 i w p cmds opts vopts nargs variadic REPLY
${shWalk({
  loop: `for ((i = 1; i < \${#words[@]} - 1; i++)); do`,
  word: `w=\${words[i]}`,
  isValueFlag: `[[ $w != *=* && " $vopts " == *" $w "* ]]`,
  isCommand: `((pos == 0)) && [[ " $cmds " == *" $w "* ]]`,
  commandlineNote: "The rest of the line is another program's: its arguments complete as files.",
  commandline: `        __latchkey_reply "$cur" '' files "$2"`,
  afterLoop: "local prefix='' src=''",
})}
  elif ((!dashdash)) && [[ $cur == --*=* ]]; then
    prefix=\${cur%%=*}=
    __latchkey_values "$cpath" "\${cur%%=*}"
    src=$REPLY
    cur=\${cur#*=}
  elif ((!dashdash)) && [[ $cur == -* ]]; then
    src="choices $opts"
  elif ((pos == 0)) && [[ -n $cmds ]]; then
    src="choices $cmds"
  else
    __latchkey_values "$cpath" "#$p"
    src=$REPLY
    # A command that takes no (more) arguments offers its flags.
    if [[ -z $src ]] && ((pos >= nargs && variadic < 0 && !dashdash)); then src="choices $opts"; fi
  fi
  __latchkey_reply "$cur" "$prefix" "$src" "$2" "\${words[0]}"
}

# $1: the word so far (after any --flag=), $2: the --flag= before it, $3: the value source, $4: the part of the
# word readline replaces (bash cut it at the last ':' or '='), $5: the latchkey command, to ask for names.
__latchkey_reply() {
  local cur=$1 prefix=$2 src=$3 w
  local -a found=()
  case $src in
    choices\\ *)
      for w in \${src#choices }; do
        [[ $w == "$cur"* ]] && found+=("$w")
      done
      ;;
    dynamic\\ *)
      while IFS= read -r w; do
        [[ -n $w && $w == "$cur"* ]] && found+=("$w")
      done < <("$5" __complete "\${src#dynamic }" 2>/dev/null </dev/null)
      ;;
    files)
      compopt -o filenames 2>/dev/null
      while IFS= read -r w; do found+=("$w"); done < <(compgen -f -- "$cur")
      ;;
    commandline)
      while IFS= read -r w; do found+=("$w"); done < <(compgen -c -- "$cur")
      ;;
  esac
  local cut=$((\${#prefix} + \${#cur} - \${#4}))
  ((cut < 0)) && cut=0
  COMPREPLY=()
  for w in "\${found[@]}"; do
    w=$prefix$w
    COMPREPLY+=("\${w:cut}")
  done
}

complete -F _latchkey latchkey
`;
}

function zshScript(tree: readonly CompletionCommand[], version: string): string {
  const described = (name: string, description: string): string => quoteSh(`${name}:${description}`);
  const spec = tree
    .map((command) => {
      const n = names(command);
      const { cmds, opts } = describedNames(command, described);
      return (
        `    ${quoteSh(command.path)})\n      cmds=(${cmds.join(" ")})\n      opts=(${opts.join(" ")})\n` +
        `      names=(${n.commands.join(" ")}) vopts=(${n.valueFlags.join(" ")})` +
        ` nargs=${command.args.length} variadic=${command.variadic} ;;`
      );
    })
    .join("\n");
  return `#compdef latchkey
${HEADER("zsh", "source <(latchkey completion zsh)   (in ~/.zshrc, after compinit)", version)}
${shTables(tree, spec, "cmds=() opts=() names=() vopts=() nargs=0 variadic=-1")}
_latchkey() {
  local cpath='' pos=0 expect='' dashdash=0 i w p nargs variadic REPLY src=''
  local -a cmds opts names vopts found
${shWalk({
  loop: "for ((i = 2; i < CURRENT; i++)); do",
  word: `w=\${(Q)words[i]}`,
  isValueFlag: `[[ $w != *=* ]] && ((\${vopts[(Ie)$w]}))`,
  isCommand: `((pos == 0 && \${names[(Ie)$w]}))`,
  commandlineNote: "The rest of the line is another program's: complete it as that program's own line.",
  commandline: `        words=("\${(@)words[i,-1]}")
        ((CURRENT -= i - 1))
        _normal`,
  afterLoop: `local cur=\${words[CURRENT]}`,
})}
  elif ((!dashdash)) && [[ $cur == --*=* ]]; then
    __latchkey_values "$cpath" "\${cur%%=*}"
    src=$REPLY
    compset -P '*='
  elif ((!dashdash)) && [[ $cur == -* ]]; then
    _describe -t options 'latchkey flag' opts
    return
  elif ((pos == 0 && \${#cmds})); then
    _describe -t commands 'latchkey command' cmds
    return
  else
    __latchkey_values "$cpath" "#$p"
    src=$REPLY
    if [[ $src == commandline ]]; then
      words=("\${(@)words[CURRENT,-1]}")
      CURRENT=1
      _normal
      return
    fi
    # A command that takes no (more) arguments offers its flags.
    if [[ -z $src ]] && ((pos >= nargs && variadic < 0 && !dashdash)); then
      _describe -t options 'latchkey flag' opts
      return
    fi
  fi
  case $src in
    choices\\ *)
      found=(\${=src#choices })
      compadd -a found
      ;;
    dynamic\\ *)
      found=(\${(f)"$("\${(Q)words[1]}" __complete "\${src#dynamic }" 2>/dev/null </dev/null)"})
      compadd -a found
      ;;
    files) _files ;;
  esac
}

if [[ $funcstack[1] == _latchkey ]]; then
  _latchkey "$@"
else
  compdef _latchkey latchkey
fi
`;
}

function fishScript(tree: readonly CompletionCommand[], version: string): string {
  const described = (name: string, description: string): string => quoteFish(`${name}\t${description}`);
  const spec = tree
    .map((command) => {
      const n = names(command);
      const { cmds, opts } = describedNames(command, described);
      return [
        `        case ${quoteFish(command.path)}`,
        `            set -g __latchkey_cmds ${cmds.join(" ")}`,
        `            set -g __latchkey_names ${n.commands.join(" ")}`,
        `            set -g __latchkey_opts ${opts.join(" ")}`,
        `            set -g __latchkey_vopts ${n.valueFlags.join(" ")}`,
        `            set -g __latchkey_nargs ${command.args.length}`,
        `            set -g __latchkey_variadic ${command.variadic}`,
      ].join("\n");
    })
    .join("\n");
  const values = valueTable(tree)
    .map(([key, word]) => `        case ${quoteFish(key)}\n            echo ${quoteFish(word)}`)
    .join("\n");
  const aliases = aliasTable(tree)
    .map(
      ([key, name]) =>
        `        case ${quoteFish(key)}\n            echo ${quoteFish(name)}\n            return`,
    )
    .join("\n");
  return `${HEADER("fish", "latchkey completion fish | source   (in ~/.config/fish/config.fish)", version)}
function __latchkey_spec --argument-names cpath
    set -g __latchkey_cmds
    set -g __latchkey_names
    set -g __latchkey_opts
    set -g __latchkey_vopts
    set -g __latchkey_nargs 0
    set -g __latchkey_variadic -1
    switch $cpath
${spec}
    end
end

function __latchkey_values --argument-names cpath key
    switch "$cpath|$key"
${values}
    end
end

function __latchkey_name --argument-names cpath word
    switch "$cpath|$word"
${aliases}
    end
    echo $word
end

function __latchkey_index --argument-names pos
    if test $__latchkey_variadic -ge 0 -a $pos -gt $__latchkey_variadic
        echo $__latchkey_variadic
    else
        echo $pos
    end
end

function __latchkey_complete
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    set -l cpath ''
    set -l pos 0
    set -l expect ''
    set -l dashdash 0
    __latchkey_spec ''
    for i in (seq 2 (count $words))
        set -l w $words[$i]
        if test -n "$expect"
            set expect ''
        else if test $dashdash = 0; and string match -q -- '-?*' $w
            if test $w = --
                set dashdash 1
            else if not string match -q -- '*=*' $w; and contains -- $w $__latchkey_vopts
                set expect $w
            end
        else if test $pos = 0; and contains -- $w $__latchkey_names
            set cpath (string trim -- "$cpath "(__latchkey_name "$cpath" $w))
            __latchkey_spec $cpath
        else
            # The rest of the line is another program's: complete it as that program's own line.
            if test "$(__latchkey_values "$cpath" "#"(__latchkey_index $pos))" = commandline
                complete -C "$(string escape -- $words[$i..-1]) $cur"
                return
            end
            set pos (math $pos + 1)
        end
    end
    set -l src ''
    set -l prefix ''
    if test -n "$expect"
        set src (__latchkey_values "$cpath" $expect)
    else if test $dashdash = 0; and string match -q -- '--*=*' $cur
        set -l parts (string split -m 1 = -- $cur)
        set prefix "$parts[1]="
        set cur $parts[2]
        set src (__latchkey_values "$cpath" $parts[1])
    else if test $dashdash = 0; and string match -q -- '-*' $cur
        printf '%s\\n' $__latchkey_opts
        return
    else if test $pos = 0; and set -q __latchkey_cmds[1]
        printf '%s\\n' $__latchkey_cmds
        return
    else
        set src (__latchkey_values "$cpath" "#"(__latchkey_index $pos))
        if test "$src" = commandline
            complete -C "$cur"
            return
        end
        # A command that takes no (more) arguments offers its flags.
        if test -z "$src" -a $pos -ge $__latchkey_nargs -a $__latchkey_variadic -lt 0 -a $dashdash = 0
            printf '%s\\n' $__latchkey_opts
            return
        end
    end
    switch "$src"
        case 'choices *'
            for v in (string split ' ' -- (string replace 'choices ' '' -- $src))
                echo $prefix$v
            end
        case 'dynamic *'
            for v in ($words[1] __complete (string replace 'dynamic ' '' -- $src) 2>/dev/null </dev/null)
                echo $prefix$v
            end
        case files
            for v in (__fish_complete_path $cur)
                echo $prefix$v
            end
    end
end

complete -c latchkey -f -a '(__latchkey_complete)'
`;
}

/** The completion script for `shell`, generated from `program`'s tree. */
export function completionScript(shell: Shell, program: Command): string {
  const tree = completionTree(program);
  const version = program.version() ?? "";
  if (shell === "bash") return bashScript(tree, version);
  if (shell === "zsh") return zshScript(tree, version);
  return fishScript(tree, version);
}

// What a completion may offer: one word no shell gives a meaning to. bash inserts what it is offered as typed,
// and a project's latchkey.json chooses its registry URLs: `https://x/;cmd;/` or `https://x/$(cmd)/` is a valid
// URL, and would run `cmd` when the completed line is entered. Anything else is left out, not quoted.
const OFFERABLE = /^[A-Za-z0-9._~:/@%+=,-]+$/;

async function dynamicValues(ctx: Context, source: DynamicSource): Promise<string[]> {
  if (source === "envs") return environmentNames(ctx);
  const urls = new Set<string>();
  for (const config of await loadRegistryConfigs(ctx)) urls.add(canonicalRegistryUrl(config.url));
  for (const record of Object.values(await readLoginRecords(ctx))) urls.add(canonicalRegistryUrl(record.url));
  return [...urls].sort();
}

/**
 * `latchkey __complete SOURCE`: the names a completion offers, one per line: the project's vault environments
 * (`envs`) or the registries of config.toml, latchkey.json and past logins (`registries`). Names only, never a
 * value or a token, and registry URLs in canonical form (no user info). An error goes to stderr, exit 1.
 */
export async function completeValues(ctx: Context, source: string, verbose: number): Promise<number> {
  try {
    if (!(DYNAMIC_SOURCES as readonly string[]).includes(source)) {
      throw new LatchkeyError("LK_USAGE", {
        message: `Nothing to complete for ${JSON.stringify(source)}; one of ${DYNAMIC_SOURCES.join(", ")}.`,
      });
    }
    const values = (await dynamicValues(ctx, source as DynamicSource)).filter((v) => OFFERABLE.test(v));
    if (values.length > 0) ctx.stdout.write(`${values.join("\n")}\n`);
    return 0;
  } catch (error) {
    return printError(ctx, error, verbose);
  }
}

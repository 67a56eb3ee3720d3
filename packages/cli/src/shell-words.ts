// The one way Latchkey writes paths into the shell lines other tools run (git's `!` helpers, pnpm's token-helper
// shims), and reads them back to check them (`doctor`).

/** Quotes one word for a POSIX shell: single quotes, each `'` inside written as `'\''`. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The words of `text` when it is shellQuote'd words separated by single spaces; null for anything else. */
export function parseQuotedWords(text: string): string[] | null {
  const words: string[] = [];
  let at = 0;
  while (text[at] === "'") {
    let word = "";
    for (;;) {
      const close = text.indexOf("'", at + 1);
      if (close === -1) return null;
      word += text.slice(at + 1, close);
      at = close + 1;
      // `'\''`: an escaped quote inside the word, which goes on in a new quoted part.
      if (!text.startsWith("\\''", at)) break;
      word += "'";
      at += 2;
    }
    words.push(word);
    if (at === text.length) return words;
    if (text[at] !== " ") return null;
    at += 1;
  }
  return null;
}

// Program arguments typed as one line: split as a POSIX shell would (quotes and backslashes; no expansions).

/** Split `text` into arguments: whitespace separates; '…' keeps everything literally; "…" keeps everything, with \"
 * \\ \$ \` escaped; a backslash outside quotes keeps the next character. Throws on an unterminated quote. */
export function splitArgs(text: string): string[] {
  const args: string[] = [];
  let current = "";
  let inArg = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new Error("unterminated ' quote");
      current += text.slice(i + 1, end);
      inArg = true;
      i = end + 1;
    } else if (c === '"') {
      i += 1;
      let closed = false;
      while (i < text.length) {
        const d = text[i];
        if (d === '"') {
          closed = true;
          i += 1;
          break;
        }
        if (d === "\\" && i + 1 < text.length && '"\\$`'.includes(text[i + 1])) {
          current += text[i + 1];
          i += 2;
        } else {
          current += d;
          i += 1;
        }
      }
      if (!closed) throw new Error('unterminated " quote');
      inArg = true;
    } else if (c === "\\") {
      if (i + 1 < text.length) current += text[i + 1];
      inArg = true;
      i += 2;
    } else if (/\s/.test(c)) {
      if (inArg) args.push(current);
      current = "";
      inArg = false;
      i += 1;
    } else {
      current += c;
      inArg = true;
      i += 1;
    }
  }
  if (inArg) args.push(current);
  return args;
}

/** The workspace-state key under which the last arguments of the file `uri` are kept. */
export function argsKey(uri: string): string {
  return `daytona.args:${uri}`;
}

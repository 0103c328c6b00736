// Secrets never reach a log: every line the extension writes passes through here.

export const REDACTED = "***";

/** Replace every occurrence of each secret (ignoring empty or very short ones, which would garble text). */
export function redact(text: string, secrets: Iterable<string | undefined>): string {
  let result = text;
  for (const secret of secrets) {
    if (!secret || secret.length < 4) continue;
    result = result.split(secret).join(REDACTED);
  }
  return result;
}

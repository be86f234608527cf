// Passwords shown on screen are masked (screen sharing, screenshots, someone behind
// you); what is copied stays the real text, since a masked command line is useless.

export const MASK = "••••";

// `scheme://user:secret@host` (also `ssu://cipher:secret@`): the part after the
// first colon of the userinfo.
const URL_USERINFO = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:@/?#]*):([^\s@/?#]*)@/gi;
// `?password=…` / `&passphrase=…` in a URL's query.
const QUERY_SECRET = /([?&](?:password|passphrase|pass)=)([^&\s#]*)/gi;
// YAML (`password: x`, `- password: x`, flow `{password: x}`) and JSON (`"password": "x"`).
const YAML_SECRET = /((?:^|[\s{,-])"?(?:password|passphrase)"?\s*:[ \t]*)("(?:[^"\\]|\\.)*"|'[^']*'|[^\s,}\n]+)/gim;

/** `text` with every password it carries replaced by MASK. */
export function maskSecrets(text: string): string {
  return text
    .replace(URL_USERINFO, (_m, head: string, secret: string) => (secret === "" ? `${head}:@` : `${head}:${MASK}@`))
    .replace(QUERY_SECRET, (_m, head: string, secret: string) => (secret === "" ? head : head + MASK))
    .replace(YAML_SECRET, (_m, head: string) => head + MASK);
}

/** Whether `text` holds anything maskSecrets would hide. */
export function hasSecrets(text: string): boolean {
  return maskSecrets(text) !== text;
}

// Text doctor prints comes from the machine or from a recording, which may hold anything (random bytes,
// escape sequences): it reaches a terminal only with control characters escaped, so a recording can
// neither move the cursor, recolour, retitle the terminal nor hide text (bidi overrides).

/** C0 controls, DEL, C1 controls, and the bidi embedding/override/isolate marks (all in the BMP). */
export function isUnsafeChar(code: number): boolean {
  return code <= 0x1f || (code >= 0x7f && code <= 0x9f) || (code >= 0x202a && code <= 0x202e) || (code >= 0x2066 && code <= 0x2069);
}

const hex = (code: number, width: number) => code.toString(16).padStart(width, '0');

function escapeWith(text: string, keep: (code: number) => boolean, esc: (code: number) => string): string {
  let out = '';
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (!isUnsafeChar(c) || keep(c)) continue;
    out += text.slice(from, i) + esc(c);
    from = i + 1;
  }
  return from === 0 ? text : out + text.slice(from);
}

const shellEscape = (c: number) => (c <= 0xff ? `\\x${hex(c, 2)}` : `\\u{${hex(c, 4)}}`);

/** Text for a terminal: newlines and tabs kept, every other control character as \xNN (\u{NNNN} above 0xff). */
export function terminalSafe(text: string): string {
  return escapeWith(text, (c) => c === 0x0a || c === 0x09, shellEscape);
}

/** One line (a YAML comment, a log line): newlines and tabs escaped too. */
export function lineSafe(text: string): string {
  return escapeWith(text, () => false, shellEscape);
}

/** JSON text: JSON.stringify already escapes C0; DEL, C1 and bidi marks become \uNNNN too — the same JSON value. */
export function jsonSafe(json: string): string {
  return escapeWith(
    json,
    (c) => c <= 0x1f,
    (c) => `\\u${hex(c, 4)}`,
  );
}

// QEMU's JSON as qemu-ga 7.2 speaks it: the lexer state machine (qobject/json-lexer.c), the streamer
// that cuts the token stream into messages by counting braces and brackets (json-streamer.c), the
// parser with its error texts, first error kept (json-parser.c), QDict's hash-bucket iteration order
// (qobject/qdict.c tdb_hash, 512 buckets, insert at head) and the writer (qobject/qjson.c: ", " and
// ": " separators, \uXXXX for non-ASCII, doubles as %.17g). Byte-exact with the real agent.

export type QObject =
  | { t: 'dict'; v: QDict }
  | { t: 'list'; v: QObject[] }
  | { t: 'str'; v: string }
  | { t: 'int'; v: bigint }
  | { t: 'uint'; v: bigint }
  | { t: 'double'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'null' };

const QDICT_BUCKET_MAX = 512;
const enc = new TextEncoder();

/** Modified UTF-8 (U+0000 as C0 80), as QEMU keeps strings. */
function modUtf8(s: string): Uint8Array {
  const b = enc.encode(s);
  if (!s.includes('\0')) return b;
  const out: number[] = [];
  for (const x of b) x === 0 ? out.push(0xc0, 0x80) : out.push(x);
  return Uint8Array.from(out);
}

/** qdict.c tdb_hash. */
export function tdbHash(key: string): number {
  const b = modUtf8(key);
  let value = Math.imul(0x238f13af, b.length) >>> 0;
  for (let i = 0; i < b.length; i++) value = (value + ((b[i]! << ((i * 5) % 24)) >>> 0)) >>> 0;
  return (Math.imul(1103515243, value) + 12345) >>> 0;
}

export class QDict {
  private readonly buckets = new Map<number, { k: string; v: QObject }[]>();
  size = 0;

  put(k: string, v: QObject): void {
    const b = tdbHash(k) % QDICT_BUCKET_MAX;
    let list = this.buckets.get(b);
    if (!list) this.buckets.set(b, (list = []));
    const e = list.find((x) => x.k === k);
    if (e) e.v = v;
    else {
      list.unshift({ k, v }); // QLIST_INSERT_HEAD
      this.size++;
    }
  }

  get(k: string): QObject | undefined {
    return this.buckets.get(tdbHash(k) % QDICT_BUCKET_MAX)?.find((x) => x.k === k)?.v;
  }

  has(k: string): boolean {
    return this.get(k) !== undefined;
  }

  /** qdict_first/qdict_next order: bucket by bucket, each bucket newest first. */
  entries(): [string, QObject][] {
    const keys = [...this.buckets.keys()].sort((a, b) => a - b);
    return keys.flatMap((b) => this.buckets.get(b)!.map((e): [string, QObject] => [e.k, e.v]));
  }
}

export const qdict = (pairs: [string, QObject][]): QObject => {
  const d = new QDict();
  for (const [k, v] of pairs) d.put(k, v);
  return { t: 'dict', v: d };
};
export const qstr = (v: string): QObject => ({ t: 'str', v });
export const qint = (v: bigint): QObject => ({ t: 'int', v });
export const qbool = (v: boolean): QObject => ({ t: 'bool', v });

// ---- lexer (json-lexer.c) ----
const JSON_ERROR = 0;
const IN_RECOVERY = 1;
const IN_DQ_STRING_ESCAPE = 2;
const IN_DQ_STRING = 3;
const IN_SQ_STRING_ESCAPE = 4;
const IN_SQ_STRING = 5;
const IN_ZERO = 6;
const IN_EXP_DIGITS = 7;
const IN_EXP_SIGN = 8;
const IN_EXP_E = 9;
const IN_MANTISSA = 10;
const IN_MANTISSA_DIGITS = 11;
const IN_DIGITS = 12;
const IN_SIGN = 13;
const IN_KEYWORD = 14;
const IN_START = 16;
// token types (JSON_MIN and up)
export const JSON_LCURLY = 100;
export const JSON_RCURLY = 101;
export const JSON_LSQUARE = 102;
export const JSON_RSQUARE = 103;
export const JSON_COLON = 104;
export const JSON_COMMA = 105;
export const JSON_INTEGER = 106;
export const JSON_FLOAT = 107;
export const JSON_KEYWORD = 108;
export const JSON_STRING = 109;
const LOOKAHEAD = 0x100;

function buildTable(): Uint16Array[] {
  const t: Uint16Array[] = [];
  for (let s = 0; s <= IN_START; s++) t.push(new Uint16Array(256)); // default JSON_ERROR
  const range = (s: number, lo: number, hi: number, v: number) => {
    for (let c = lo; c <= hi; c++) t[s]![c] = v;
  };
  const ch = (c: string) => c.charCodeAt(0);
  const terminal = (s: number, tok: number) => range(s, 0, 255, tok | LOOKAHEAD);
  // recovery: skip to a structural character, a control character other than tab, or 0xFE/0xFF
  range(IN_RECOVERY, 0, 0x1f, IN_START | LOOKAHEAD);
  range(IN_RECOVERY, 0x20, 0xfd, IN_RECOVERY);
  range(IN_RECOVERY, 0xfe, 0xff, IN_START | LOOKAHEAD);
  t[IN_RECOVERY]![ch('\t')] = IN_RECOVERY;
  for (const c of '[]{}:,') t[IN_RECOVERY]![ch(c)] = IN_START | LOOKAHEAD;
  range(IN_DQ_STRING_ESCAPE, 0x20, 0xfd, IN_DQ_STRING);
  range(IN_DQ_STRING, 0x20, 0xfd, IN_DQ_STRING);
  t[IN_DQ_STRING]![ch('\\')] = IN_DQ_STRING_ESCAPE;
  t[IN_DQ_STRING]![ch('"')] = JSON_STRING;
  range(IN_SQ_STRING_ESCAPE, 0x20, 0xfd, IN_SQ_STRING);
  range(IN_SQ_STRING, 0x20, 0xfd, IN_SQ_STRING);
  t[IN_SQ_STRING]![ch('\\')] = IN_SQ_STRING_ESCAPE;
  t[IN_SQ_STRING]![ch("'")] = JSON_STRING;
  terminal(IN_ZERO, JSON_INTEGER);
  range(IN_ZERO, ch('0'), ch('9'), JSON_ERROR);
  t[IN_ZERO]![ch('.')] = IN_MANTISSA;
  terminal(IN_EXP_DIGITS, JSON_FLOAT);
  range(IN_EXP_DIGITS, ch('0'), ch('9'), IN_EXP_DIGITS);
  range(IN_EXP_SIGN, ch('0'), ch('9'), IN_EXP_DIGITS);
  t[IN_EXP_E]![ch('-')] = IN_EXP_SIGN;
  t[IN_EXP_E]![ch('+')] = IN_EXP_SIGN;
  range(IN_EXP_E, ch('0'), ch('9'), IN_EXP_DIGITS);
  terminal(IN_MANTISSA_DIGITS, JSON_FLOAT);
  range(IN_MANTISSA_DIGITS, ch('0'), ch('9'), IN_MANTISSA_DIGITS);
  t[IN_MANTISSA_DIGITS]![ch('e')] = IN_EXP_E;
  t[IN_MANTISSA_DIGITS]![ch('E')] = IN_EXP_E;
  range(IN_MANTISSA, ch('0'), ch('9'), IN_MANTISSA_DIGITS);
  terminal(IN_DIGITS, JSON_INTEGER);
  range(IN_DIGITS, ch('0'), ch('9'), IN_DIGITS);
  t[IN_DIGITS]![ch('e')] = IN_EXP_E;
  t[IN_DIGITS]![ch('E')] = IN_EXP_E;
  t[IN_DIGITS]![ch('.')] = IN_MANTISSA;
  t[IN_SIGN]![ch('0')] = IN_ZERO;
  range(IN_SIGN, ch('1'), ch('9'), IN_DIGITS);
  terminal(IN_KEYWORD, JSON_KEYWORD);
  range(IN_KEYWORD, ch('a'), ch('z'), IN_KEYWORD);
  const st = t[IN_START]!;
  st[ch('"')] = IN_DQ_STRING;
  st[ch("'")] = IN_SQ_STRING;
  st[ch('0')] = IN_ZERO;
  range(IN_START, ch('1'), ch('9'), IN_DIGITS);
  st[ch('-')] = IN_SIGN;
  st[ch('{')] = JSON_LCURLY;
  st[ch('}')] = JSON_RCURLY;
  st[ch('[')] = JSON_LSQUARE;
  st[ch(']')] = JSON_RSQUARE;
  st[ch(',')] = JSON_COMMA;
  st[ch(':')] = JSON_COLON;
  range(IN_START, ch('a'), ch('z'), IN_KEYWORD);
  for (const c of ' \t\r\n') st[ch(c)] = IN_START;
  return t;
}
const TABLE = buildTable();

interface Token {
  type: number;
  bytes: Uint8Array;
}

// json-streamer.c limits
const MAX_TOKEN_COUNT = 2 * 1024 * 1024;
const MAX_NESTING = 1 << 10;

export type Emit = (obj: QObject | null, err: string | null) => void;

/** A JSON message parser fed bytes; calls `emit` with each complete value or error. */
export class JsonMessageParser {
  private state = IN_START;
  private token: number[] = [];
  private tokens: Token[] = [];
  private brace = 0;
  private bracket = 0;

  constructor(private readonly emit: Emit) {}

  feed(buf: Uint8Array): void {
    for (const c of buf) this.feedChar(c);
  }

  /** json_lexer_feed_char. */
  private feedChar(c: number): void {
    let consumed = false;
    while (!consumed) {
      const raw = TABLE[this.state]![c]!;
      consumed = !(raw & LOOKAHEAD);
      let next = raw & ~LOOKAHEAD;
      if (consumed) this.token.push(c);
      if (next >= JSON_LCURLY) {
        this.processToken(next, Uint8Array.from(this.token));
        this.token = [];
        next = IN_START;
      } else if (next === IN_START) {
        this.token = [];
      } else if (next === JSON_ERROR) {
        this.processToken(JSON_ERROR, Uint8Array.from(this.token));
        this.token = [];
        next = IN_RECOVERY;
      } else if (next === IN_RECOVERY) {
        this.token = [];
      }
      this.state = next;
    }
  }

  /** json_message_process_token. */
  private processToken(type: number, bytes: Uint8Array): void {
    switch (type) {
      case JSON_LCURLY:
        this.brace++;
        break;
      case JSON_RCURLY:
        this.brace--;
        break;
      case JSON_LSQUARE:
        this.bracket++;
        break;
      case JSON_RSQUARE:
        this.bracket--;
        break;
      case JSON_ERROR:
        return this.out(null, `JSON parse error, stray '${decodeLossy(bytes)}'`);
      default:
        break;
    }
    if (this.tokens.length + 1 > MAX_TOKEN_COUNT) return this.out(null, 'JSON token count limit exceeded');
    if (this.bracket + this.brace > MAX_NESTING) return this.out(null, 'JSON nesting depth limit exceeded');
    this.tokens.push({ type, bytes });
    if ((this.brace > 0 || this.bracket > 0) && this.brace >= 0 && this.bracket >= 0) return;
    const p = new Parser(this.tokens);
    const v = p.parseValue();
    this.out(p.err ? null : v, p.err);
  }

  private out(obj: QObject | null, err: string | null): void {
    this.brace = 0;
    this.bracket = 0;
    this.tokens = [];
    this.emit(obj, err);
  }
}

// ---- parser (json-parser.c) ----
class Parser {
  err: string | null = null;
  private i = 0;
  constructor(private readonly toks: Token[]) {}

  private error(msg: string): void {
    if (!this.err) this.err = `JSON parse error, ${msg}`;
  }
  private peek(): Token | undefined {
    return this.toks[this.i];
  }
  private pop(): Token | undefined {
    return this.toks[this.i++];
  }

  parseValue(): QObject | null {
    const t = this.peek();
    if (!t) {
      this.error('premature EOI');
      return null;
    }
    switch (t.type) {
      case JSON_LCURLY:
        return this.parseObject();
      case JSON_LSQUARE:
        return this.parseArray();
      case JSON_INTEGER:
      case JSON_FLOAT:
      case JSON_STRING:
        return this.parseLiteral();
      case JSON_KEYWORD:
        return this.parseKeyword();
      default:
        this.error('expecting value');
        return null;
    }
  }

  private parsePair(d: QDict): boolean {
    if (!this.peek()) {
      this.error('premature EOI');
      return false;
    }
    const key = this.parseValue();
    if (key?.t !== 'str') {
      this.error('key is not a string in object');
      return false;
    }
    const colon = this.pop();
    if (!colon) {
      this.error('premature EOI');
      return false;
    }
    if (colon.type !== JSON_COLON) {
      this.error('missing : in object pair');
      return false;
    }
    const value = this.parseValue();
    if (!value) {
      this.error('Missing value in dict');
      return false;
    }
    if (d.has(key.v)) {
      this.error('duplicate key');
      return false;
    }
    d.put(key.v, value);
    return true;
  }

  private parseObject(): QObject | null {
    this.pop();
    const d = new QDict();
    const peek = this.peek();
    if (!peek) {
      this.error('premature EOI');
      return null;
    }
    if (peek.type !== JSON_RCURLY) {
      if (!this.parsePair(d)) return null;
      let t = this.pop();
      if (!t) {
        this.error('premature EOI');
        return null;
      }
      while (t.type !== JSON_RCURLY) {
        if (t.type !== JSON_COMMA) {
          this.error('expected separator in dict');
          return null;
        }
        if (!this.parsePair(d)) return null;
        t = this.pop();
        if (!t) {
          this.error('premature EOI');
          return null;
        }
      }
    } else this.pop();
    return { t: 'dict', v: d };
  }

  private parseArray(): QObject | null {
    this.pop();
    const list: QObject[] = [];
    const peek = this.peek();
    if (!peek) {
      this.error('premature EOI');
      return null;
    }
    if (peek.type !== JSON_RSQUARE) {
      let o = this.parseValue();
      if (!o) {
        this.error('expecting value');
        return null;
      }
      list.push(o);
      let t = this.pop();
      if (!t) {
        this.error('premature EOI');
        return null;
      }
      while (t.type !== JSON_RSQUARE) {
        if (t.type !== JSON_COMMA) {
          this.error('expected separator in list');
          return null;
        }
        o = this.parseValue();
        if (!o) {
          this.error('expecting value');
          return null;
        }
        list.push(o);
        t = this.pop();
        if (!t) {
          this.error('premature EOI');
          return null;
        }
      }
    } else this.pop();
    return { t: 'list', v: list };
  }

  private parseKeyword(): QObject | null {
    const s = ascii(this.pop()!.bytes);
    if (s === 'true') return { t: 'bool', v: true };
    if (s === 'false') return { t: 'bool', v: false };
    if (s === 'null') return { t: 'null' };
    this.error(`invalid keyword '${s}'`);
    return null;
  }

  private parseLiteral(): QObject | null {
    const tok = this.pop()!;
    if (tok.type === JSON_STRING) return this.parseString(tok.bytes);
    const s = ascii(tok.bytes);
    if (tok.type === JSON_INTEGER) {
      // QNUM_I64 if it fits, else QNUM_U64, else a double
      const v = BigInt(s);
      if (v >= -(2n ** 63n) && v < 2n ** 63n) return { t: 'int', v };
      if (!s.startsWith('-') && v < 2n ** 64n) return { t: 'uint', v };
    }
    return { t: 'double', v: Number(s) };
  }

  /** parse_string: escapes, surrogate pairs, modified UTF-8 validation. */
  private parseString(b: Uint8Array): QObject | null {
    const quote = b[0]!;
    let out = '';
    let p = 1;
    while (b[p] !== quote) {
      if (b[p] === 0x5c) {
        const beg = p++;
        const e = String.fromCharCode(b[p++]!);
        const simple: Record<string, string> = { '"': '"', "'": "'", '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        if (e in simple) out += simple[e];
        else if (e === 'u') {
          let cp = cvt4hex(b, p);
          p += 4;
          if (cp >= 0xd800 && cp <= 0xdbff && b[p] === 0x5c && b[p + 1] === 0x75) {
            cp = 0x10000 + ((cp & 0x3ff) << 10);
            const trailing = cvt4hex(b, p + 2);
            if (trailing >= 0xdc00 && trailing <= 0xdfff) {
              cp |= trailing & 0x3ff;
              p += 6;
            } else cp = -1;
          }
          if (!isValidCodepoint(cp)) {
            this.error(`${ascii(b.subarray(beg, p))} is not a valid Unicode character`);
            return null;
          }
          out += String.fromCodePoint(cp);
        } else {
          this.error('invalid escape sequence in string');
          return null;
        }
      } else {
        const r = modUtf8Codepoint(b, p);
        if (r.cp < 0) {
          this.error('invalid UTF-8 sequence in string');
          return null;
        }
        p = r.end;
        out += String.fromCodePoint(r.cp);
      }
    }
    return { t: 'str', v: out };
  }
}

function ascii(b: Uint8Array): string {
  return String.fromCharCode(...b);
}

function cvt4hex(b: Uint8Array, p: number): number {
  let cp = 0;
  for (let i = 0; i < 4; i++) {
    const c = b[p + i];
    if (c === undefined) return -1;
    const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
    if (d < 0) return -1;
    cp = (cp << 4) | d;
  }
  return cp;
}

/** util/unicode.c is_valid_codepoint: no surrogates, no noncharacters, ≤ U+10FFFF. */
function isValidCodepoint(cp: number): boolean {
  if (cp < 0 || cp > 0x10ffff) return false;
  if ((cp & 0xfffff800) === 0xd800) return false;
  if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return false;
  return true;
}

/** util/unicode.c mod_utf8_codepoint: one code point from modified UTF-8, −1 if invalid. */
function modUtf8Codepoint(b: Uint8Array, p: number): { cp: number; end: number } {
  const c = b[p]!;
  if (c < 0x80) return { cp: c === 0 ? -1 : c, end: p + 1 };
  if (c < 0xc0 || c >= 0xfe) return { cp: -1, end: p + 1 };
  const len = c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf8 ? 4 : c < 0xfc ? 5 : 6;
  let cp = c & (0x7f >> len);
  let i = 1;
  for (; i < len; i++) {
    const x = b[p + i];
    if (x === undefined || (x & 0xc0) !== 0x80) return { cp: -1, end: p + i };
    cp = (cp << 6) | (x & 0x3f);
  }
  const end = p + len;
  if (cp === 0 && len === 2) return { cp: 0, end }; // C0 80: modified UTF-8's U+0000
  const minForLen = [0, 0, 0x80, 0x800, 0x10000, 0x200000, 0x4000000][len]!;
  if (cp < minForLen || !isValidCodepoint(cp)) return { cp: -1, end };
  return { cp, end };
}

/** Bytes as qjson.c would print them: invalid sequences become U+FFFD. */
function decodeLossy(b: Uint8Array): string {
  let s = '';
  for (let p = 0; p < b.length; ) {
    if (b[p] === 0) break; // a C string: "%s" stops at NUL
    const r = modUtf8Codepoint(b, p);
    s += r.cp < 0 ? '\ufffd' : String.fromCodePoint(r.cp);
    p = r.end;
  }
  return s;
}

// ---- writer (qjson.c to_json, compact) ----
function quote(s: string): string {
  let o = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"') o += '\\"';
    else if (ch === '\\') o += '\\\\';
    else if (ch === '\b') o += '\\b';
    else if (ch === '\f') o += '\\f';
    else if (ch === '\n') o += '\\n';
    else if (ch === '\r') o += '\\r';
    else if (ch === '\t') o += '\\t';
    else if (cp > 0xffff) {
      const hex = (x: number) => x.toString(16).toUpperCase().padStart(4, '0');
      o += `\\u${hex(0xd800 + ((cp - 0x10000) >> 10))}\\u${hex(0xdc00 + ((cp - 0x10000) & 0x3ff))}`;
    } else if (cp < 0x20 || cp >= 0x7f) o += `\\u${cp.toString(16).toUpperCase().padStart(4, '0')}`;
    else o += ch;
  }
  return o + '"';
}

/** printf("%.17g"). */
export function formatG17(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x < 0 ? '-inf' : 'inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const [mant, expS] = x.toExponential(16).split('e') as [string, string];
  const exp = Number(expS);
  const strip = (s: string) => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
  if (exp < -4 || exp >= 17) return `${strip(mant)}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return strip(x.toFixed(16 - exp));
}

export function toJson(o: QObject): string {
  switch (o.t) {
    case 'dict':
      return `{${o.v
        .entries()
        .map(([k, v]) => `${quote(k)}: ${toJson(v)}`)
        .join(', ')}}`;
    case 'list':
      return `[${o.v.map(toJson).join(', ')}]`;
    case 'str':
      return quote(o.v);
    case 'int':
    case 'uint':
      return o.v.toString();
    case 'double':
      return formatG17(o.v);
    case 'bool':
      return o.v ? 'true' : 'false';
    case 'null':
      return 'null';
  }
}

/**
 * Strict JSON (RFC 8259) syntax check with the offset of the first error. A `.json` scenario is
 * parsed by the YAML parser for positions, and YAML accepts more than JSON (trailing commas,
 * comments, unquoted strings); this check makes a `.json` file mean JSON. Iterative, so a deeply
 * nested file cannot exhaust the stack.
 */

/** Where and why `text` is not JSON. */
export interface JsonSyntaxError {
  readonly offset: number;
  readonly message: string;
}

const NUMBER_RE = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const LITERALS = ['true', 'false', 'null'] as const;
const SINGLE_QUOTES = 'JSON strings take double quotes';

/** What the scanner expects next. */
type Want = 'value' | 'value-or-close' | 'key' | 'key-or-close' | 'colon' | 'comma-or-close';

function shown(ch: string): string {
  return ch === '"' ? "'\"'" : `"${ch}"`;
}

/**
 * End offset of the string starting at `text[i] === '"'`, or the error inside it.
 */
function scanString(text: string, i: number): number | JsonSyntaxError {
  for (let j = i + 1; j < text.length; j++) {
    const c = text.charCodeAt(j);
    if (c === 0x22) return j + 1;
    if (c < 0x20) return { offset: j, message: 'control character in a string (escape it)' };
    if (c === 0x5c) {
      const e = text[j + 1];
      if (e === 'u') {
        if (!/^[0-9a-fA-F]{4}$/.test(text.slice(j + 2, j + 6)))
          return { offset: j, message: 'bad \\u escape (four hex digits expected)' };
        j += 5;
      } else if (e !== undefined && '"\\/bfnrt'.includes(e)) {
        j++;
      } else {
        return { offset: j, message: `bad escape "\\${e ?? ''}"` };
      }
    }
  }
  return { offset: i, message: 'unterminated string' };
}

/** The scanner's state: the text, the open brackets' closers, what comes next and where. */
interface Scan {
  readonly text: string;
  readonly closers: string[];
  want: Want;
  /** Offset of the last comma read (for the trailing-comma message), or -1. */
  lastComma: number;
  i: number;
}

/** End offset of the scalar (string, number, literal) at `s.i`, or the error there. */
function scanScalar(s: Scan, ch: string): number | JsonSyntaxError {
  const { text, i } = s;
  if (ch === '"') return scanString(text, i);
  if (ch === '-' || (ch >= '0' && ch <= '9')) {
    NUMBER_RE.lastIndex = i;
    if (!NUMBER_RE.test(text)) return { offset: i, message: 'bad number' };
    return NUMBER_RE.lastIndex;
  }
  const lit = LITERALS.find((l) => text.startsWith(l, i));
  if (lit === undefined)
    return { offset: i, message: ch === "'" ? SINGLE_QUOTES : `unexpected ${shown(ch)}` };
  return i + lit.length;
}

/** Read a value (or, after `[`, the `]` of an empty array) at `s.i`. */
function scanValue(s: Scan, ch: string): JsonSyntaxError | null {
  if (ch === ']' || ch === '}') {
    if (s.want === 'value-or-close' && ch === s.closers.at(-1)) {
      s.closers.pop();
      s.i++;
      s.want = 'comma-or-close';
      return null;
    }
    if (s.lastComma >= 0 && s.text.slice(s.lastComma + 1, s.i).trim() === '' && ch === s.closers.at(-1))
      return { offset: s.lastComma, message: 'trailing comma is not allowed in JSON' };
    return { offset: s.i, message: `unexpected ${shown(ch)}` };
  }
  if (ch === '{' || ch === '[') {
    s.closers.push(ch === '{' ? '}' : ']');
    s.i++;
    s.want = ch === '{' ? 'key-or-close' : 'value-or-close';
    return null;
  }
  const end = scanScalar(s, ch);
  if (typeof end !== 'number') return end;
  s.i = end;
  s.want = 'comma-or-close';
  return null;
}

/** Read an object key (or, after `{`, the `}` of an empty object) at `s.i`. */
function scanKey(s: Scan, ch: string): JsonSyntaxError | null {
  if (ch === '}' && s.want === 'key-or-close') {
    s.closers.pop();
    s.i++;
    s.want = 'comma-or-close';
    return null;
  }
  if (ch === '}') return { offset: s.lastComma, message: 'trailing comma is not allowed in JSON' };
  if (ch !== '"')
    return { offset: s.i, message: ch === "'" ? SINGLE_QUOTES : 'expected a key in double quotes' };
  const end = scanString(s.text, s.i);
  if (typeof end !== 'number') return end;
  s.i = end;
  s.want = 'colon';
  return null;
}

/** Read the `,` or the closing bracket after a value at `s.i`. */
function scanCommaOrClose(s: Scan, ch: string): JsonSyntaxError | null {
  const top = s.closers.at(-1);
  if (top === undefined) return { offset: s.i, message: 'unexpected text after the JSON value' };
  if (ch === ',') {
    s.lastComma = s.i;
    s.i++;
    s.want = top === '}' ? 'key' : 'value';
  } else if (ch === top) {
    s.closers.pop();
    s.i++;
  } else {
    return { offset: s.i, message: `expected "," or "${top}"` };
  }
  return null;
}

/** Read the token at `s.i` (not white space, not the end) as `s.want` says. */
function scanToken(s: Scan, ch: string): JsonSyntaxError | null {
  switch (s.want) {
    case 'value-or-close':
    case 'value':
      return scanValue(s, ch);
    case 'key-or-close':
    case 'key':
      return scanKey(s, ch);
    case 'colon':
      if (ch !== ':') return { offset: s.i, message: 'expected ":"' };
      s.i++;
      s.want = 'value';
      return null;
    case 'comma-or-close':
      return scanCommaOrClose(s, ch);
  }
}

/** The first place `text` is not a single strict JSON value, or `null` when it is JSON. */
export function jsonSyntaxError(text: string): JsonSyntaxError | null {
  // A leading byte-order mark is allowed (RFC 8259 §8.1 lets parsers ignore it).
  const s: Scan = {
    text,
    closers: [],
    want: 'value',
    lastComma: -1,
    i: text.charCodeAt(0) === 0xfeff ? 1 : 0,
  };
  for (;;) {
    while (s.i < text.length && ' \t\n\r'.includes(text[s.i]!)) s.i++;
    if (s.i >= text.length) {
      return s.want === 'comma-or-close' && s.closers.length === 0
        ? null
        : { offset: s.i, message: 'unexpected end of input' };
    }
    const ch = text[s.i]!;
    if (ch === '#' || (ch === '/' && (text[s.i + 1] === '/' || text[s.i + 1] === '*')))
      return { offset: s.i, message: 'comments are not allowed in JSON' };
    const err = scanToken(s, ch);
    if (err !== null) return err;
  }
}

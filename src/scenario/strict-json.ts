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

/** The first place `text` is not a single strict JSON value, or `null` when it is JSON. */
export function jsonSyntaxError(text: string): JsonSyntaxError | null {
  const closers: string[] = [];
  let want: Want = 'value';
  let lastComma = -1;
  // A leading byte-order mark is allowed (RFC 8259 §8.1 lets parsers ignore it).
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  for (;;) {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
    if (i >= text.length) {
      return want === 'comma-or-close' && closers.length === 0
        ? null
        : { offset: i, message: 'unexpected end of input' };
    }
    const ch = text[i]!;
    if (ch === '#' || (ch === '/' && (text[i + 1] === '/' || text[i + 1] === '*')))
      return { offset: i, message: 'comments are not allowed in JSON' };
    switch (want) {
      case 'value-or-close':
      case 'value': {
        if (ch === ']' || ch === '}') {
          if (want === 'value-or-close' && ch === closers.at(-1)) {
            closers.pop();
            i++;
            want = 'comma-or-close';
            break;
          }
          if (lastComma >= 0 && text.slice(lastComma + 1, i).trim() === '' && ch === closers.at(-1))
            return { offset: lastComma, message: 'trailing comma is not allowed in JSON' };
          return { offset: i, message: `unexpected ${shown(ch)}` };
        }
        if (ch === '{' || ch === '[') {
          closers.push(ch === '{' ? '}' : ']');
          i++;
          want = ch === '{' ? 'key-or-close' : 'value-or-close';
          break;
        }
        if (ch === '"') {
          const end = scanString(text, i);
          if (typeof end !== 'number') return end;
          i = end;
        } else if (ch === '-' || (ch >= '0' && ch <= '9')) {
          NUMBER_RE.lastIndex = i;
          if (!NUMBER_RE.test(text)) return { offset: i, message: 'bad number' };
          i = NUMBER_RE.lastIndex;
        } else {
          const lit = LITERALS.find((l) => text.startsWith(l, i));
          if (lit === undefined) {
            return {
              offset: i,
              message: ch === "'" ? SINGLE_QUOTES : `unexpected ${shown(ch)}`,
            };
          }
          i += lit.length;
        }
        want = 'comma-or-close';
        break;
      }
      case 'key-or-close':
      case 'key': {
        if (ch === '}' && want === 'key-or-close') {
          closers.pop();
          i++;
          want = 'comma-or-close';
          break;
        }
        if (ch === '}') return { offset: lastComma, message: 'trailing comma is not allowed in JSON' };
        if (ch !== '"')
          return { offset: i, message: ch === "'" ? SINGLE_QUOTES : 'expected a key in double quotes' };
        const end = scanString(text, i);
        if (typeof end !== 'number') return end;
        i = end;
        want = 'colon';
        break;
      }
      case 'colon':
        if (ch !== ':') return { offset: i, message: 'expected ":"' };
        i++;
        want = 'value';
        break;
      case 'comma-or-close': {
        const top = closers.at(-1);
        if (top === undefined) return { offset: i, message: 'unexpected text after the JSON value' };
        if (ch === ',') {
          lastComma = i;
          i++;
          want = top === '}' ? 'key' : 'value';
        } else if (ch === top) {
          closers.pop();
          i++;
        } else {
          return { offset: i, message: `expected "," or "${top}"` };
        }
        break;
      }
    }
  }
}

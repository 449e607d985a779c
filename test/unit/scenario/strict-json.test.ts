import { describe, expect, test } from 'vitest';
import { jsonSyntaxError } from '../../../src/scenario/strict-json.ts';

describe('jsonSyntaxError', () => {
  test.each([
    '{}',
    '[]',
    ' {"a": [1, -2.5e+3, 0, true, false, null, "x\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9"]}\n',
    '"just a string"',
    '0',
    '\ufeff{"bom": 1}',
  ])('accepts %j', (text) => {
    expect(jsonSyntaxError(text)).toBeNull();
  });

  test('arrays nested 100000 deep: checked without recursion', () => {
    expect(jsonSyntaxError(`${'['.repeat(100_000)}${']'.repeat(100_000)}`)).toBeNull();
    expect(jsonSyntaxError(`${'['.repeat(100_000)}${']'.repeat(99_999)}`)).toEqual({
      offset: 200_000 - 1,
      message: 'unexpected end of input',
    });
  });

  test.each([
    ['', 0, 'unexpected end of input'],
    ['{"a": 1,}', 7, 'trailing comma is not allowed in JSON'],
    ['[1, ]', 2, 'trailing comma is not allowed in JSON'],
    ['{"a": }', 6, 'unexpected "}"'],
    ['[1 2]', 3, 'expected "," or "]"'],
    ['{"a" 1}', 5, 'expected ":"'],
    ['{"a": 1 "b": 2}', 8, 'expected "," or "}"'],
    ['[1] // x', 4, 'comments are not allowed in JSON'],
    ['{"a": 01}', 7, 'expected "," or "}"'],
    ['{"a": -}', 6, 'bad number'],
    ['{"a": .5}', 6, 'unexpected "."'],
    ['{"a": NaN}', 6, 'unexpected "N"'],
    ['{"a": "x\ty"}', 8, 'control character in a string (escape it)'],
    ['{"a": "\\x"}', 7, 'bad escape "\\x"'],
    ['{"a": "\\u12g4"}', 7, 'bad \\u escape (four hex digits expected)'],
    ['{"a": "open', 6, 'unterminated string'],
    ['{"a": 1}}', 8, 'unexpected text after the JSON value'],
    ['[1]]', 3, 'unexpected text after the JSON value'],
    ['[', 1, 'unexpected end of input'],
  ])('%j: offset %d, %s', (text, offset, message) => {
    expect(jsonSyntaxError(text)).toEqual({ offset, message });
  });
});

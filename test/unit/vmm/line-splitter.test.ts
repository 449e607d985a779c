import { describe, expect, test } from 'vitest';
import { LineSplitter } from '../../../src/vmm/line-splitter.ts';

/** The lines `chunks` give, fed one by one. */
function linesOf(ends: RegExp, chunks: readonly string[]): string[] {
  const s = new LineSplitter(ends);
  const out: string[] = [];
  for (const c of chunks)
    s.push(c, (l) => {
      out.push(l);
      return true;
    });
  return out;
}

describe('LineSplitter', () => {
  test('a line split over chunks is whole; the text after the last end waits for its end', () => {
    expect(linesOf(/\n/g, ['rea', 'dq 0x', '8000\nwrit', 'eq 1 2\nread'])).toEqual([
      'readq 0x8000',
      'writeq 1 2',
    ]);
    expect(linesOf(/\n/g, ['a\n\nb\n'])).toEqual(['a', '', 'b']);
  });

  test("HMP's ends: every \\r and every \\n (\\r\\n is a line, then an empty one)", () => {
    expect(linesOf(/[\r\n]/g, ['info pic\r\ninfo status\rcont\nq'])).toEqual([
      'info pic',
      '',
      'info status',
      'cont',
    ]);
  });

  test('a false from the callback drops the rest of the chunk', () => {
    const s = new LineSplitter(/\n/g);
    const out: string[] = [];
    s.push('a\nquit\nb\nc', (l) => {
      out.push(l);
      return l !== 'quit';
    });
    expect(out).toEqual(['a', 'quit']);
  });

  test('a 32 MiB line in 64 KiB chunks comes out whole', () => {
    const chunk = 'ab'.repeat(32 * 1024);
    const s = new LineSplitter(/\n/g);
    const out: string[] = [];
    for (let i = 0; i < 512; i++)
      s.push(chunk, (l) => {
        out.push(l);
        return true;
      });
    s.push('\n', (l) => {
      out.push(l);
      return true;
    });
    expect(out.map((l) => l.length)).toEqual([32 * 1024 * 1024]);
  });

  test('the line-end pattern must be a global regex', () => {
    expect(() => new LineSplitter(/\n/)).toThrow('LineSplitter: /\\n/ must be a global regex');
  });
});

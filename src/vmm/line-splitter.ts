/**
 * Lines out of a stream of text chunks, for qtest and the monitors (HMP, QMP).
 *
 * A line may come in many chunks: a qtest `write` of 16 MiB is 32 MiB of hex, read 64 KiB at a
 * time. The pieces of the line being received are kept apart and joined once, at its end.
 * Appending every chunk to one buffer string and searching that from its start made a long line
 * quadratic: 25 s for that `write`, against 1 s now.
 */
export class LineSplitter {
  /** The pieces of the line being received (input after the last line end). */
  private readonly pieces: string[] = [];
  /** What ends a line: a global regex (`/\n/g` for qtest and QMP, `/[\r\n]/g` for HMP). */
  private readonly ends: RegExp;

  constructor(ends: RegExp) {
    if (!ends.global) throw new Error(`LineSplitter: ${ends} must be a global regex`);
    this.ends = ends;
  }

  /**
   * Split `chunk`: `line` gets each complete line, without its end, and returns false to stop
   * (the process is ending: the rest of the chunk is dropped).
   */
  push(chunk: string, line: (text: string) => boolean): void {
    const re = this.ends;
    re.lastIndex = 0;
    let from = 0;
    for (let m = re.exec(chunk); m !== null; m = re.exec(chunk)) {
      let text = chunk.slice(from, m.index);
      if (this.pieces.length > 0) {
        this.pieces.push(text);
        text = this.pieces.join('');
        this.pieces.length = 0;
      }
      from = m.index + m[0].length;
      if (!line(text)) return;
    }
    if (from < chunk.length) this.pieces.push(chunk.slice(from));
  }
}

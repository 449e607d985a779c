import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../../bin/xivelab.js', import.meta.url));
const QEMU_ARGS = ['-M', 'pseries,ic-mode=xive', '-display', 'none', '-nodefaults', '-S', '-qtest', 'stdio'];

describe('xivelab qtest (the QEMU front end through the main CLI)', () => {
  it('answers qtest on stdio: ESB GET of LISN 0 after reset is PQ 01', () => {
    const r = spawnSync(process.execPath, [bin, 'qtest', ...QEMU_ARGS, '-qtest-log', '/dev/null'], {
      input: 'readq 0x0006010000010800\nreadq 0x0006010000010e00\nreadq 0x0006010000010800\n',
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('OK 0x0000000000000001\nOK 0x0000000000000001\nOK 0x0000000000000002\n');
  });

  it('rejects an unknown QEMU option with one line and exit 1', () => {
    const r = spawnSync(process.execPath, [bin, 'qtest', '-frobnicate'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

import { describe, expect, it } from 'vitest';
import {
  E2BIG,
  EBADF,
  EBUSY,
  EDEADLOCK,
  EEXIST,
  EFAULT,
  EINVAL,
  ENODEV,
  ENOMEM,
  ENOSPC,
  ENOTTY,
  ENXIO,
  EOPNOTSUPP,
  EPERM,
  errnoName,
  formatSyscallResult,
} from '../../../src/host/errno.ts';

describe('errno', () => {
  it('has Linux values (powerpc)', () => {
    expect([
      EPERM,
      ENXIO,
      E2BIG,
      EBADF,
      ENOMEM,
      EFAULT,
      EBUSY,
      EEXIST,
      ENODEV,
      EINVAL,
      ENOTTY,
      ENOSPC,
    ]).toEqual([1, 6, 7, 9, 12, 14, 16, 17, 19, 22, 25, 28]);
    expect(EOPNOTSUPP).toBe(95);
    expect(EDEADLOCK).toBe(58);
  });
  it('names either sign and formats raw results', () => {
    expect(errnoName(-22)).toBe('EINVAL');
    expect(errnoName(19)).toBe('ENODEV');
    // ENOENT = 2 and EIO = 5: the name table is keyed by the constants.
    expect([-2, -5].map(formatSyscallResult)).toEqual(['-ENOENT', '-EIO']);
    expect(errnoName(-4095)).toBe('E?4095');
    expect(formatSyscallResult(-ENOMEM)).toBe('-ENOMEM');
    expect(formatSyscallResult(0x7fff_0000)).toBe(String(0x7fff_0000));
  });
});

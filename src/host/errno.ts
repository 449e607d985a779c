/**
 * Linux errno numbers (`include/uapi/asm-generic/errno-base.h`, `errno.h`, as on powerpc, where
 * only `EDEADLOCK` differs from the generic table), plus the kernel-internal codes that can leak
 * out of a driver. Kernel paths of the model return `-E…` exactly as the kernel does.
 */

export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EINTR = 4;
export const EIO = 5;
export const ENXIO = 6;
export const E2BIG = 7;
export const ENOEXEC = 8;
export const EBADF = 9;
export const ECHILD = 10;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const ENOTBLK = 15;
export const EBUSY = 16;
export const EEXIST = 17;
export const EXDEV = 18;
export const ENODEV = 19;
export const ENOTDIR = 20;
export const EISDIR = 21;
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const ENOTTY = 25;
export const ETXTBSY = 26;
export const EFBIG = 27;
export const ENOSPC = 28;
export const ESPIPE = 29;
export const EROFS = 30;
export const EMLINK = 31;
export const EPIPE = 32;
export const EDOM = 33;
export const ERANGE = 34;
export const EDEADLK = 35;
export const ENAMETOOLONG = 36;
export const ENOLCK = 37;
export const ENOSYS = 38;
export const ENOTEMPTY = 39;
export const ELOOP = 40;
export const ENOMSG = 42;
export const EIDRM = 43;
/** powerpc's value (the generic table aliases it to EDEADLK). */
export const EDEADLOCK = 58;
export const ENODATA = 61;
export const ETIME = 62;
export const EOVERFLOW = 75;
export const EBADFD = 77;
export const EILSEQ = 84;
export const ENOTSOCK = 88;
export const EMSGSIZE = 90;
export const EPROTONOSUPPORT = 93;
export const EOPNOTSUPP = 95;
export const EADDRINUSE = 98;
export const ENOBUFS = 105;
export const ENOTCONN = 107;
export const ETIMEDOUT = 110;
export const EALREADY = 114;
export const EINPROGRESS = 115;
export const ECANCELED = 125;
/** Kernel-internal (`include/linux/errno.h`): never meant to reach userspace. */
export const ERESTARTSYS = 512;
export const ENOIOCTLCMD = 515;
export const ENOTSUPP = 524;

const NAMES: ReadonlyMap<number, string> = new Map<number, string>([
  [EPERM, 'EPERM'],
  [ENOENT, 'ENOENT'],
  [ESRCH, 'ESRCH'],
  [EINTR, 'EINTR'],
  [EIO, 'EIO'],
  [ENXIO, 'ENXIO'],
  [E2BIG, 'E2BIG'],
  [ENOEXEC, 'ENOEXEC'],
  [EBADF, 'EBADF'],
  [ECHILD, 'ECHILD'],
  [EAGAIN, 'EAGAIN'],
  [ENOMEM, 'ENOMEM'],
  [EACCES, 'EACCES'],
  [EFAULT, 'EFAULT'],
  [ENOTBLK, 'ENOTBLK'],
  [EBUSY, 'EBUSY'],
  [EEXIST, 'EEXIST'],
  [EXDEV, 'EXDEV'],
  [ENODEV, 'ENODEV'],
  [ENOTDIR, 'ENOTDIR'],
  [EISDIR, 'EISDIR'],
  [EINVAL, 'EINVAL'],
  [ENFILE, 'ENFILE'],
  [EMFILE, 'EMFILE'],
  [ENOTTY, 'ENOTTY'],
  [ETXTBSY, 'ETXTBSY'],
  [EFBIG, 'EFBIG'],
  [ENOSPC, 'ENOSPC'],
  [ESPIPE, 'ESPIPE'],
  [EROFS, 'EROFS'],
  [EMLINK, 'EMLINK'],
  [EPIPE, 'EPIPE'],
  [EDOM, 'EDOM'],
  [ERANGE, 'ERANGE'],
  [EDEADLK, 'EDEADLK'],
  [ENAMETOOLONG, 'ENAMETOOLONG'],
  [ENOLCK, 'ENOLCK'],
  [ENOSYS, 'ENOSYS'],
  [ENOTEMPTY, 'ENOTEMPTY'],
  [ELOOP, 'ELOOP'],
  [ENOMSG, 'ENOMSG'],
  [EIDRM, 'EIDRM'],
  [EDEADLOCK, 'EDEADLOCK'],
  [ENODATA, 'ENODATA'],
  [ETIME, 'ETIME'],
  [EOVERFLOW, 'EOVERFLOW'],
  [EBADFD, 'EBADFD'],
  [EILSEQ, 'EILSEQ'],
  [ENOTSOCK, 'ENOTSOCK'],
  [EMSGSIZE, 'EMSGSIZE'],
  [EPROTONOSUPPORT, 'EPROTONOSUPPORT'],
  [EOPNOTSUPP, 'EOPNOTSUPP'],
  [EADDRINUSE, 'EADDRINUSE'],
  [ENOBUFS, 'ENOBUFS'],
  [ENOTCONN, 'ENOTCONN'],
  [ETIMEDOUT, 'ETIMEDOUT'],
  [EALREADY, 'EALREADY'],
  [EINPROGRESS, 'EINPROGRESS'],
  [ECANCELED, 'ECANCELED'],
  [ERESTARTSYS, 'ERESTARTSYS'],
  [ENOIOCTLCMD, 'ENOIOCTLCMD'],
  [ENOTSUPP, 'ENOTSUPP'],
]);

/**
 * The C name of an errno, accepting either sign (`-22` and `22` both give `'EINVAL'`);
 * `'E?<n>'` for a number not in the table.
 */
export function errnoName(err: number): string {
  const n = Math.abs(err);
  return NAMES.get(n) ?? `E?${n}`;
}

/** Renders a raw syscall result: a non-negative value as is, a negative one as `-EINVAL`. */
export function formatSyscallResult(ret: number): string {
  return ret < 0 ? `-${errnoName(ret)}` : String(ret);
}

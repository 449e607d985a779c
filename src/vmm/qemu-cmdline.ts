/**
 * The QEMU command line `xivelab-qemu` accepts: the subset of `qemu-system-ppc64` options the
 * QEMU oracle's driver (`xq.py`) and the differential suite use, parsed
 * into a plain options record. Anything else is refused with one line, as QEMU refuses an
 * unknown option (`qemu-system-ppc64: -foo: invalid option`).
 *
 * The record also carries the accelerator (`-accel kvm[,kernel-irqchip=…]`, `-enable-kvm`,
 * `-M …,accel=kvm`), `kernel-irqchip=on|off` and the passthrough design (`-xivelab-design NAME`);
 * the front end's main decides what it runs.
 *
 * @remarks Models the option handling of softmmu/vl.c:qemu_init() (`-M` as a QemuOpts group with
 * an implied `type`, `-m` sizes with a MiB default suffix, `-smp` topology) for these options.
 */

/**
 * A `-monitor` / `-qmp` backend: a unix socket server (`unix:PATH,server=on,wait=off`) or the
 * process's stdin/stdout (`stdio`).
 */
export type MonitorSpec =
  | {
      readonly kind: 'unix';
      /** The option's value as written (`unix:PATH,server=on,…`): QEMU's error messages quote it. */
      readonly arg: string;
      readonly path: string;
      /** `server=on` (the only mode served: the front end listens). */
      readonly server: boolean;
      /** `wait=on` would block start-up until a client connects. */
      readonly wait: boolean;
    }
  | { readonly kind: 'stdio' };

export type Accel = 'tcg' | 'kvm';

export interface QemuOptions {
  /** Machine type (`pseries`, `pseries-7.2`). */
  machineType: string;
  /** `ic-mode`: only `xive` is modelled. */
  icMode: 'xive';
  /** `kernel-irqchip` (`null` = not given: QEMU's default "allowed, not required"). */
  kernelIrqchip: 'on' | 'off' | null;
  /** `cap-*=` machine properties, kept verbatim (they only matter to TCG CPU features). */
  caps: Record<string, string>;
  accel: Accel;
  /** Number of vCPUs. */
  smp: number;
  /** Guest RAM in bytes. */
  ramSize: number;
  /** `-bios FILE`: loaded at guest physical 0, not executed (the mailbox vCPU serves its protocol). */
  bios: string | null;
  nodefaults: boolean;
  /** `-S`: vCPUs stopped until HMP `cont`. */
  startStopped: boolean;
  /** `-qtest stdio`. */
  qtest: 'stdio' | null;
  /** `-qtest-log FILE`. */
  qtestLog: string | null;
  /** `-monitor`: the HMP monitor. */
  monitor: MonitorSpec | null;
  /** `-qmp`: the QMP monitor. */
  qmp: MonitorSpec | null;
  /** `-d` log items. */
  logItems: string[];
  /** `-D FILE`. */
  logFile: string | null;
  /** `-xivelab-design NAME`: the passthrough-page design (KVM mode). */
  design: string | null;
  help: boolean;
  version: boolean;
}

/** A command-line error: the front end prints `xivelab-qemu: <message>` and exits 1. */
export class QemuCmdlineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QemuCmdlineError';
  }
}

/** The pseries default RAM size (`mc->default_ram_size`, 512 MiB). */
export const PSERIES_DEFAULT_RAM = 512 * 2 ** 20;

/** `-d` items QEMU 7.2 accepts that mean something here (others are refused). */
export const LOG_ITEMS: readonly string[] = ['guest_errors', 'unimp', 'int', 'exec', 'in_asm', 'cpu', 'mmu'];

/** The `--help` text. */
export const QEMU_HELP = `usage: xivelab-qemu [options]
A QEMU 7.2-compatible front end over the xivelab sPAPR machine (ic-mode=xive), for the qtest
protocol and the HMP monitor; drive it exactly as qemu-system-ppc64 (QEMU=xivelab-qemu xq.py).

-M, -machine pseries[,ic-mode=xive][,kernel-irqchip=on|off][,accel=tcg|kvm][,cap-*=...]
                 the sPAPR machine (cap-* properties are accepted and ignored)
-accel tcg|kvm[,kernel-irqchip=on|off]
                 accelerator (-enable-kvm = -accel kvm). kvm: the machine on a modelled host of
                 its own (KVM vCPUs, the in-kernel XIVE device with its ESB/TIMA pages mmap'd
                 and overlaid as RAM devices); kernel-irqchip=off is not modelled
-smp N[,cores=..,threads=..,sockets=..,maxcpus=..]
                 number of vCPUs (default 1)
-m SIZE          guest RAM, suffix K/M/G/T (default MiB; default 512M)
-bios FILE       firmware image: loaded into guest RAM at 0 but NOT executed; vCPU 0 is a
                 built-in mailbox vCPU serving the oracle stub's protocol (stub.S,
                 bench_stub.S) at guest physical 0x8000 (kinds 0-10), started at reset
-display none    (no display is modelled)
-nodefaults      (accepted: no default devices are created anyway)
-S               do not start the vCPUs (the mailbox) until HMP 'cont'
-qtest stdio     qtest protocol on stdin/stdout
-qtest-log FILE  log qtest traffic ([R +t] / [S +t] lines)
-monitor unix:PATH,server=on,wait=off | stdio | none
                 HMP monitor (info pic, info status, system_reset, cont, stop, quit, help)
-qmp unix:PATH,server=on,wait=off | stdio
                 QMP monitor (qmp_capabilities, query-status, stop, cont, system_reset, quit,
                 human-monitor-command; STOP/RESUME/RESET/SHUTDOWN events)
-d ITEM[,...]    log items (guest_errors, unimp, ...)
-D FILE          write the log to FILE instead of stderr
-xivelab-design NAME
                 passthrough-page design of the host's KVM device (with -accel kvm): the
                 option-1 designs rmap, rmap-fixed, vma-pointer, vma-walk
-h, -help        this text
-version         version information
`;

const VALUE_OPTIONS = new Set([
  'M',
  'machine',
  'accel',
  'smp',
  'm',
  'bios',
  'display',
  'qtest',
  'qtest-log',
  'monitor',
  'qmp',
  'd',
  'D',
  'xivelab-design',
]);
const FLAG_OPTIONS = new Set(['nodefaults', 'S', 'enable-kvm', 'h', 'help', 'version']);

/** Split a QemuOpts string `a=b,c=d` (`,,` escapes a comma), the first bare word going to `implied`. */
export function parseQemuOpts(s: string, implied: string | null): Map<string, string> {
  const out = new Map<string, string>();
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === ',') {
      if (s[i + 1] === ',') {
        cur += ',';
        i++;
        continue;
      }
      parts.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  parts.push(cur);
  parts.forEach((p, i) => {
    const eq = p.indexOf('=');
    if (eq < 0) {
      if (i === 0 && implied !== null) {
        if (p !== '') out.set(implied, p);
        return;
      }
      // A bare flag: QEMU reads `foo` as `foo=on` (and `nofoo` as off, deprecated).
      if (p !== '') out.set(p, 'on');
      return;
    }
    out.set(p.slice(0, eq), p.slice(eq + 1));
  });
  return out;
}

/**
 * A QEMU size (`-m`): a number with an optional K/M/G/T/P/E suffix (binary units); a bare
 * number means `defaultUnit` bytes (MiB for `-m`).
 *
 * @remarks Models util/cutils.c:qemu_strtosz_MiB().
 */
export function parseQemuSize(s: string, defaultUnit: number): number {
  const m = /^(\d+(?:\.\d+)?)([kKmMgGtTpPeEbB]?)$/.exec(s.trim());
  if (!m) throw new QemuCmdlineError(`invalid size '${s}'`);
  const n = Number(m[1]);
  const suffix = (m[2] ?? '').toUpperCase();
  const unit = suffix === '' ? defaultUnit : suffix === 'B' ? 1 : 2 ** (10 * ('KMGTPE'.indexOf(suffix) + 1));
  const v = Math.round(n * unit);
  if (!Number.isSafeInteger(v) || v <= 0) throw new QemuCmdlineError(`invalid size '${s}'`);
  return v;
}

function parseBool(opt: string, key: string, v: string): boolean {
  if (v === 'on' || v === 'yes' || v === 'true') return true;
  if (v === 'off' || v === 'no' || v === 'false') return false;
  throw new QemuCmdlineError(`${opt}: Parameter '${key}' expects 'on' or 'off'`);
}

function parseAccel(opt: string, name: string): Accel {
  if (name === 'tcg' || name === 'kvm') return name;
  throw new QemuCmdlineError(`${opt}: invalid accelerator ${name}`);
}

function parseMachine(o: QemuOptions, v: string): void {
  const opts = parseQemuOpts(v, 'type');
  for (const [key, val] of opts) {
    if (key === 'type') {
      if (val !== 'pseries' && !/^pseries-\d+\.\d+$/.test(val)) {
        throw new QemuCmdlineError(`-M ${val}: unsupported machine type (xivelab models pseries only)`);
      }
      o.machineType = val;
    } else if (key === 'ic-mode') {
      if (val !== 'xive') {
        throw new QemuCmdlineError(`-M ic-mode=${val}: unsupported (xivelab models ic-mode=xive only)`);
      }
      o.icMode = 'xive';
    } else if (key === 'kernel-irqchip') {
      if (val === 'split') throw new QemuCmdlineError('kernel_irqchip split mode not supported on pseries');
      o.kernelIrqchip = parseBool('-M', key, val) ? 'on' : 'off';
    } else if (key === 'accel') {
      o.accel = parseAccel('-M', val.split(':')[0] ?? val);
    } else if (key.startsWith('cap-')) {
      o.caps[key] = val;
    } else {
      throw new QemuCmdlineError(`-M ${key}=${val}: Property 'pseries-7.2-machine.${key}' not found`);
    }
  }
}

function parseSmp(v: string): number {
  const opts = parseQemuOpts(v, 'cpus');
  let cpus: number | null = null;
  let product = 1;
  for (const [key, val] of opts) {
    if (!/^\d+$/.test(val)) throw new QemuCmdlineError(`-smp ${v}: Parameter '${key}' expects a number`);
    const n = Number(val);
    if (key === 'cpus') cpus = n;
    else if (key === 'sockets' || key === 'dies' || key === 'cores' || key === 'threads') product *= n;
    else if (key !== 'maxcpus') throw new QemuCmdlineError(`-smp ${v}: Invalid parameter '${key}'`);
  }
  const smp = cpus ?? product;
  if (smp < 1) throw new QemuCmdlineError(`-smp ${v}: Invalid CPU topology`);
  return smp;
}

function parseMonitor(opt: string, v: string): MonitorSpec | null {
  if (v === 'none' && opt === '-monitor') return null;
  if (v === 'stdio') return { kind: 'stdio' };
  if (!v.startsWith('unix:')) {
    throw new QemuCmdlineError(
      `${opt} ${v}: only unix:PATH,server=on,wait=off${opt === '-monitor' ? ', stdio and none are' : ' and stdio are'} served`,
    );
  }
  const opts = parseQemuOpts(v.slice(5), 'path');
  const path = opts.get('path');
  if (path === undefined || path === '') throw new QemuCmdlineError(`${opt} ${v}: missing socket path`);
  let server = false;
  let wait = true;
  for (const [key, val] of opts) {
    if (key === 'path') continue;
    if (key === 'server') server = parseBool(opt, key, val);
    else if (key === 'wait') wait = parseBool(opt, key, val);
    else if (key === 'nowait') wait = false;
    else throw new QemuCmdlineError(`${opt} ${v}: Invalid parameter '${key}'`);
  }
  if (!server) throw new QemuCmdlineError(`${opt} ${v}: only server=on is served`);
  return { kind: 'unix', arg: v, path, server, wait };
}

/** Parse `argv` (without the program name). Throws {@link QemuCmdlineError}. */
export function parseQemuCmdline(argv: readonly string[]): QemuOptions {
  const o: QemuOptions = {
    machineType: 'pseries',
    icMode: 'xive',
    kernelIrqchip: null,
    caps: {},
    accel: 'tcg',
    smp: 1,
    ramSize: PSERIES_DEFAULT_RAM,
    bios: null,
    nodefaults: false,
    startStopped: false,
    qtest: null,
    qtestLog: null,
    monitor: null,
    qmp: null,
    logItems: [],
    logFile: null,
    design: null,
    help: false,
    version: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    if (!raw.startsWith('-') || raw === '-' || raw === '--') {
      throw new QemuCmdlineError(`${raw}: unexpected argument (a disk image is not modelled)`);
    }
    const name = raw.startsWith('--') ? raw.slice(2) : raw.slice(1);
    if (FLAG_OPTIONS.has(name)) {
      if (name === 'nodefaults') o.nodefaults = true;
      else if (name === 'S') o.startStopped = true;
      else if (name === 'enable-kvm') o.accel = 'kvm';
      else if (name === 'version') o.version = true;
      else o.help = true;
      continue;
    }
    if (!VALUE_OPTIONS.has(name)) throw new QemuCmdlineError(`${raw}: invalid option`);
    const v = argv[i + 1];
    if (v === undefined) throw new QemuCmdlineError(`${raw}: requires an argument`);
    i++;
    switch (name) {
      case 'M':
      case 'machine':
        parseMachine(o, v);
        break;
      case 'accel': {
        const ao = parseQemuOpts(v, 'accel');
        o.accel = parseAccel('-accel', ao.get('accel') ?? v);
        const ki = ao.get('kernel-irqchip');
        if (ki === 'split') throw new QemuCmdlineError('kernel_irqchip split mode not supported on pseries');
        if (ki !== undefined) o.kernelIrqchip = parseBool('-accel', 'kernel-irqchip', ki) ? 'on' : 'off';
        break;
      }
      case 'smp':
        o.smp = parseSmp(v);
        break;
      case 'm': {
        const size = parseQemuOpts(v, 'size').get('size');
        if (size === undefined) throw new QemuCmdlineError(`-m ${v}: missing 'size'`);
        o.ramSize = parseQemuSize(size, 2 ** 20);
        break;
      }
      case 'bios':
        o.bios = v;
        break;
      case 'display':
        if (v !== 'none') throw new QemuCmdlineError(`-display ${v}: only -display none is supported`);
        break;
      case 'qtest':
        if (v !== 'stdio') throw new QemuCmdlineError(`-qtest ${v}: only -qtest stdio is served`);
        o.qtest = 'stdio';
        break;
      case 'qtest-log':
        o.qtestLog = v;
        break;
      case 'monitor':
        o.monitor = parseMonitor('-monitor', v);
        break;
      case 'qmp':
        o.qmp = parseMonitor('-qmp', v);
        break;
      case 'd':
        for (const item of v.split(',')) {
          if (!LOG_ITEMS.includes(item) && !item.startsWith('trace:')) {
            throw new QemuCmdlineError(`-d ${v}: unknown log item '${item}'`);
          }
          o.logItems.push(item);
        }
        break;
      case 'D':
        o.logFile = v;
        break;
      default:
        o.design = v;
        break;
    }
  }
  const onStdio = [o.qtest === 'stdio', o.monitor?.kind === 'stdio', o.qmp?.kind === 'stdio'].filter(
    (x) => x,
  );
  if (onStdio.length > 1) throw new QemuCmdlineError('cannot use stdio by multiple character devices');
  return o;
}

/**
 * The human monitor (HMP) of `xivelab-qemu`: QEMU's `(qemu) ` prompt and line protocol (`\r\n`
 * line ends, the command line echoed back first) with the commands the oracle uses —
 * `info pic`, `info status`, `system_reset`, `cont`, `stop`, `quit`, `help`.
 *
 * Deviation: QEMU's readline echoes each keystroke with terminal escape sequences; here the
 * command line is echoed once, plainly. Clients drop that first line either way.
 *
 * @remarks Models monitor/hmp.c:handle_hmp_command() (lookup, "unknown command",
 * "extraneous characters") and the HMP handlers hmp_info_pic(), hmp_info_status(),
 * hmp_system_reset(), hmp_cont(), hmp_stop(), hmp_quit() of QEMU 7.2.
 */

import { LineSplitter } from './line-splitter.ts';
import type { QemuSystem } from './qtest.ts';

export const HMP_PROMPT = '(qemu) ';

interface HmpCommand {
  readonly name: string;
  readonly alias: string | null;
  readonly help: string;
  readonly run: (hmp: Hmp) => string;
}

const COMMANDS: readonly HmpCommand[] = [
  { name: 'cont', alias: 'c', help: 'cont|c  -- resume emulation', run: (h) => h.cont() },
  { name: 'help', alias: '?', help: 'help|? [cmd]  -- show the help', run: () => '' },
  { name: 'quit', alias: 'q', help: 'quit|q  -- quit the emulator', run: (h) => h.quit() },
  { name: 'stop', alias: 's', help: 'stop|s  -- stop emulation', run: (h) => h.stopVm() },
  { name: 'system_reset', alias: null, help: 'system_reset  -- reset the system', run: (h) => h.reset() },
];

const INFO: readonly HmpCommand[] = [
  { name: 'pic', alias: null, help: 'info pic  -- show PIC state', run: (h) => h.infoPic() },
  {
    name: 'status',
    alias: null,
    help: 'info status  -- show the current VM status (running|paused)',
    run: (h) => h.infoStatus(),
  },
];

export class Hmp {
  readonly sys: QemuSystem;
  /**
   * Every `\r` and every `\n` ends a line, as QEMU's readline takes both for Enter: `\r\n`
   * is a command and then an empty line (echoed, and prompted again), as QEMU 7.2 answers it.
   *
   * @remarks Models util/readline.c:readline_handle_byte() (cases 10 and 13).
   */
  private readonly lines = new LineSplitter(/[\r\n]/g);

  constructor(sys: QemuSystem) {
    this.sys = sys;
  }

  /** What a new monitor connection receives. */
  banner(): string {
    return `xivelab-qemu (QEMU 7.2 compatible) monitor - type 'help' for more information\r\n${HMP_PROMPT}`;
  }

  /**
   * Feed client bytes; returns what to send back (echo, output, prompt) for every complete
   * line. After `quit` nothing more is processed.
   */
  feed(chunk: string): string {
    let reply = '';
    this.lines.push(chunk, (line) => {
      reply += `${line}\r\n`;
      const out = this.execute(line);
      reply += out.replace(/\n/g, '\r\n');
      if (this.sys.exitCode !== null) return false;
      reply += HMP_PROMPT;
      return true;
    });
    return reply;
  }

  /** Run one command line; returns its output (`\n` line ends). */
  execute(line: string): string {
    const words = line
      .trim()
      .split(/\s+/)
      .filter((w) => w !== '');
    const name = words[0];
    if (name === undefined) return '';
    if (name === 'info') {
      const sub = words[1];
      if (sub === undefined) return `${INFO.map((c) => c.help).join('\n')}\n`;
      const c = INFO.find((x) => x.name === sub);
      if (!c) return `unknown command: 'info ${sub}'\n`;
      if (words.length > 2) return extraneous(sub, `info ${sub}`);
      return c.run(this);
    }
    const c = COMMANDS.find((x) => x.name === name || x.alias === name);
    if (!c) return `unknown command: '${name}'\n`;
    if (c.name === 'help') {
      const topic = words[1];
      if (topic === undefined) return `${[...COMMANDS, ...INFO].map((x) => x.help).join('\n')}\n`;
      const t = COMMANDS.find((x) => x.name === topic || x.alias === topic);
      return t ? `${t.help}\n` : `unknown command: '${topic}'\n`;
    }
    if (words.length > 1) return extraneous(c.name, c.name);
    return c.run(this);
  }

  /**
   * `info pic`: every vCPU's thread context rings and the LISN table (SpaprXive's part), then
   * the irqchip line the machine adds.
   *
   * @remarks Models hw/ppc/spapr.c:spapr_pic_print_info().
   */
  infoPic(): string {
    return `${this.sys.machine.xive.infoPic()}irqchip: ${this.irqchip}\n`;
  }

  /** `in-kernel` with the KVM device connected (`kvm_irqchip_in_kernel()`), else `emulated`. */
  get irqchip(): 'emulated' | 'in-kernel' {
    return this.sys.irqchipInKernel ? 'in-kernel' : 'emulated';
  }

  infoStatus(): string {
    const st = this.sys.runState;
    if (st === 'running') return 'VM status: running\n';
    return st === 'paused' ? 'VM status: paused\n' : `VM status: paused (${st})\n`;
  }

  reset(): string {
    this.sys.systemReset();
    return '';
  }

  cont(): string {
    const err = this.sys.cont();
    return err !== null ? `${err}\n` : '';
  }

  stopVm(): string {
    this.sys.stop();
    return '';
  }

  quit(): string {
    this.sys.quit();
    return '';
  }
}

/** `name` is the command's own name (`status` for `info status`), `full` what `help` takes. */
function extraneous(name: string, full: string): string {
  return `${name}: extraneous characters at the end of line\nTry "help ${full}" for more information\n`;
}

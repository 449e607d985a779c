/**
 * The invariants of the passthrough-page designs on a run, as checks over the real state of the host
 * and the VMM (page tables, the partition-scoped tree, the KVM device's irq state) and over what
 * the guest received: I1 routing, I2 isolation, I4/I5 deliveries against a PQ model of the same
 * MSIs, I6 the guest-visible view and trace against the emulated reference. I3 and I7 are counts
 * the designs and limits produce; the runner reports them directly.
 */

import type { Host } from '../host/host.ts';
import type { KvmVm } from '../host/kvm/kvm.ts';
import { kvmDeviceFromFilp } from '../host/kvm/kvm-device.ts';
import type { KvmXiveNative } from '../host/kvm/xive-native.ts';
import { KVM_XIVE_ESB_PAGE_OFFSET } from '../host/kvm/xive-native-uapi.ts';
import { PAGE_SIZE } from '../host/mm/constants.ts';

const hex = (n: number): string => `0x${n.toString(16)}`;
const pfnText = (pfn: number): string => `pfn ${hex(pfn)}`;

/** One passthrough irq as the checks see it. */
export interface PassthroughIrq {
  /** `function vector n` for messages. */
  readonly label: string;
  readonly lisn: number;
  /** Guest physical address of its EOI/management page. */
  readonly mgmtGpa: number;
  /** A dedicated number that is no longer plugged: nothing may back it. */
  readonly retired: boolean;
}

/**
 * The page girq `lisn`'s ESB page (`eoi`: the EOI/management page, else the trigger page) must
 * reach now, as a pfn, or −1 for none: the kernel's selection (the passthrough source once
 * set_mapped has published it, else the irq's IPI); a retired number or a source that does not
 * exist reaches nothing.
 */
function backingPfn(xive: KvmXiveNative, lisn: number, eoi: boolean, retired: boolean): number {
  const st = xive.irqState(lisn);
  let xd = null;
  if (st?.ptNumber && st.ptData) xd = st.ptData;
  else if (!retired && st?.valid) xd = st.ipiData;
  const page = xd === null ? 0 : eoi ? xd.eoiPage : xd.trigPage;
  return page === 0 ? -1 : page / PAGE_SIZE;
}

/**
 * I1: every way to an irq's ESB pages reaches the source backing that irq now.
 * - The guest: the EOI page of each irq in `irqs` (`probe` makes the guest access it, a PQ GET,
 *   so that the partition-scoped entry exists); a retired number reaches nothing.
 * - Every process: each present PTE of every mapping of `vm`'s KVM XIVE device file (the VMM's
 *   own, a forked helper's, an SCM_RIGHTS peer's), over the ESB range, reaches the page of the
 *   source backing its girq (file page 4 + 2n: n's trigger page, 5 + 2n: its EOI page). A stale
 *   PTE there reads and writes the IPI's PQ while the device owns the irq.
 * Returns one message per wrong entry.
 */
export function routingViolations(
  host: Host,
  vm: KvmVm,
  irqs: readonly PassthroughIrq[],
  probe: (gpa: number) => void,
): string[] {
  const xive = vm.devices[0]?.xive;
  if (xive === undefined) return [];
  const out: string[] = [];
  const owner = (pfn: number): string =>
    pfn < 0 ? 'nothing' : `${host.phys.ownerName(pfn * PAGE_SIZE) ?? 'a page'} ${pfnText(pfn)}`;
  const backing = (lisn: number): string => {
    const pt = xive.irqState(lisn)?.ptNumber ?? 0;
    return pt ? `hw irq ${hex(pt)}` : 'IPI';
  };
  const retired = new Set(irqs.filter((q) => q.retired).map((q) => q.lisn));
  for (const q of irqs) {
    probe(q.mgmtGpa + 0x800);
    const got = vm.pt.lookup(q.mgmtGpa / PAGE_SIZE, false);
    const want = backingPfn(xive, q.lisn, true, q.retired);
    if (got !== want) {
      out.push(
        `${q.label} (LISN ${hex(q.lisn)}, ${backing(q.lisn)}): the guest's EOI page reaches ${owner(got)}, not ${want < 0 ? 'nothing' : pfnText(want)}`,
      );
    }
  }
  for (const p of host.mm.processes) {
    for (const vma of p.mm.vmas.all()) {
      if (vma.file === null || kvmDeviceFromFilp(vma.file)?.vm !== vm) continue;
      const vpn0 = vma.start / PAGE_SIZE;
      p.mm.pgtable.scan(vpn0, vma.end / PAGE_SIZE, (vpn, got) => {
        const page = vma.pgoff + (vpn - vpn0) - KVM_XIVE_ESB_PAGE_OFFSET;
        if (page < 0) return;
        const lisn = Math.floor(page / 2);
        const eoi = page % 2 === 1;
        const want = backingPfn(xive, lisn, eoi, retired.has(lisn));
        if (got !== want) {
          out.push(
            `pid ${p.pid} maps LISN ${hex(lisn)}'s ${eoi ? 'EOI' : 'trigger'} page (${backing(lisn)}) at ${hex(vpn * PAGE_SIZE)} to ${owner(got)}, not ${want < 0 ? 'nothing' : pfnText(want)}`,
          );
        }
      });
    }
  }
  return out;
}

/**
 * I2: no PTE in any process and no partition-scoped entry (of `vm`, when there is KVM) reaches a
 * page `gone` says belongs to the function `what`, which has left. One message per entry.
 */
export function isolationViolations(
  host: Host,
  vm: KvmVm | null,
  gone: (pfn: number) => boolean,
  what: string,
): string[] {
  const out: string[] = [];
  for (const p of host.mm.processes)
    p.mm.pgtable.scan(0, Number.MAX_SAFE_INTEGER, (vpn, pfn) => {
      if (gone(pfn))
        out.push(`pid ${p.pid} still maps ${what}'s page ${pfnText(pfn)} at ${hex(vpn * PAGE_SIZE)}`);
    });
  for (const [gfn, pfn] of vm?.pt.entriesPointingAt(gone) ?? [])
    out.push(`partition-scoped entry gpa ${hex(gfn * PAGE_SIZE)} → ${what}'s page ${pfnText(pfn)}`);
  return out;
}

/**
 * The deliveries the guest must see for a stream of MSIs, per `device:vector`, from the PQ state
 * machine of each source and the Linux guest's MSI flow: the first MSI while P is clear is a
 * delivery and sets P; further ones set Q (coalesced); when the guest takes its interrupts, each
 * pending source is EOI'd with SET_PQ_00 and a set Q re-triggers once more.
 */
export class PqModel {
  /** Expected deliveries per key. */
  readonly expected = new Map<string, number>();
  private readonly pq = new Map<string, number>();

  /** One MSI of `key`. */
  raise(key: string): void {
    const st = this.pq.get(key) ?? 0;
    if (st === 0) this.bump(key);
    this.pq.set(key, st === 0 ? 1 : 3);
  }

  /** The guest takes every pending interrupt. */
  take(): void {
    for (const [key, st] of this.pq) if (st === 3) this.bump(key);
    this.pq.clear();
  }

  private bump(key: string): void {
    this.expected.set(key, (this.expected.get(key) ?? 0) + 1);
  }
}

/** I4 (lost) and I5 (spurious): handled against expected deliveries, one message per key. */
export function deliveryFindings(
  handled: ReadonlyMap<string, number>,
  expected: ReadonlyMap<string, number>,
): { lost: string[]; spurious: string[] } {
  const lost: string[] = [];
  const spurious: string[] = [];
  const keys = new Set([...expected.keys(), ...handled.keys()]);
  for (const k of [...keys].sort()) {
    const want = expected.get(k) ?? 0;
    const got = handled.get(k) ?? 0;
    if (got < want) lost.push(`${k}: ${want - got} of ${want} expected deliveries lost`);
    if (got > want) spurious.push(`${k}: ${got - want} spurious deliveries beyond the ${want} expected`);
  }
  return { lost, spurious };
}

/** I6: the first entry where `a` differs from the reference `b`, described; null if equal. */
export function firstDifference(what: string, a: readonly string[], b: readonly string[]): string | null {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i])
      return `${what} #${i}: "${a[i] ?? '(none)'}" where the emulated reference has "${b[i] ?? '(none)'}"`;
  }
  return null;
}

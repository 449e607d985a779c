/**
 * The QOM object graph of QEMU 7.2's `pseries` machine as `qemu-system-ppc64 -M pseries,
 * ic-mode=xive -nodefaults -qtest stdio` builds it, and QEMU's path lookup over it — what a qtest
 * `irq_intercept_in|out PATH` names.
 *
 * The tree (HMP `info qom-tree` of QEMU 7.2.22, `-smp N`, one thread per core):
 * `/machine` (pseries-7.2-machine) with `qtest`, `rtc`, `wdt1`…`wdt4`, `peripheral`,
 * `peripheral-anon`, one `dr-connector[0x10000000+i]` per vCPU core and 31 PHB connectors
 * `dr-connector[0x20000000+i]`; `/machine/unattached` holding `device[0]` (spapr-xive, with
 * `source`, `end_source` and its memory regions), `device[1]`…`device[N]` (the CPU cores, each
 * with `thread[0]`, its two GPIO inputs `unnamed-gpio-in[0|1]` and its `xive-tctx`), then the
 * VIO bridge, the NVRAM, the PCI host bridge (its `pci.0` bus, two TCE tables, 256 PCI
 * connectors), `sysbus`, `io[0]`, `system[0]`; beside `/machine` the root holds `objects`
 * (`ppc_spapr.ram`), `chardevs` and `dr-connector` (a link per DRC index, in hex).
 *
 * The link properties of the objects that are not memory regions are modelled (`parent_bus`,
 * `cpu`, `presenter`, `xive`, `xive-fabric`, `memory`, `device`, a bus's `child[K]` and
 * `hotplug-handler`, the machine's `memory-backend`); memory regions' own links (`container`)
 * and the chardevs' children are not.
 *
 * @remarks Models qom/object.c:object_resolve_path() (object_resolve_abs_path(),
 * object_resolve_partial_path(), object_resolve_path_component()) over the objects that
 * hw/ppc/spapr.c:spapr_machine_init(), hw/ppc/spapr_cpu_core.c and hw/ppc/spapr_drc.c create.
 */

/** One QOM object: its type, whether it is a TYPE_DEVICE, its child and link properties. */
export interface QomObject {
  readonly type: string;
  readonly device: boolean;
  readonly children: Map<string, QomObject>;
  /** Link properties; null is an unset link (resolves to nothing). */
  readonly links: Map<string, QomObject | null>;
  /** The vCPU index of a CPU thread object, else -1. */
  readonly cpu: number;
}

function obj(type: string, device: boolean, cpu = -1): QomObject {
  return { type, device, children: new Map(), links: new Map(), cpu };
}

function child(parent: QomObject, name: string, o: QomObject): QomObject {
  parent.children.set(name, o);
  return o;
}

const region = (): QomObject => obj('memory-region', false);
const hex = (n: number): string => n.toString(16);

/** Number of PHB dynamic-reconfiguration connectors (`SPAPR_MAX_PHBS`). */
const SPAPR_MAX_PHBS = 31;
/** PCI slot connectors per PHB (32 slots × 8 functions). */
const PCI_DRCS = 256;
const DRC_CPU = 0x1000_0000;
const DRC_PHB = 0x2000_0000;
const DRC_PCI = 0x4000_0000;

/** Build the object graph of a pseries machine with `smp` single-thread cores; returns the root. */
export function spaprQomTree(smp: number): QomObject {
  const root = obj('container', false);
  const drcLinks = child(root, 'dr-connector', obj('container', false));
  const objects = child(root, 'objects', obj('container', false));
  const ram = child(objects, 'ppc_spapr.ram', obj('memory-backend-ram', false));
  child(root, 'chardevs', obj('container', false));
  const machine = child(root, 'machine', obj('pseries-7.2-machine', false));
  machine.links.set('memory-backend', ram);
  machine.links.set('confidential-guest-support', null);
  child(machine, 'peripheral', obj('container', false));
  child(machine, 'peripheral-anon', obj('container', false));
  child(machine, 'qtest', obj('qtest', false));
  const unattached = child(machine, 'unattached', obj('container', false));
  const sysbus = obj('System', false);
  const system = obj('memory-region', false);
  const addDrc = (
    owner: QomObject,
    index: number,
    type: string,
    device: QomObject | null | undefined,
  ): void => {
    const d = child(owner, `dr-connector[${index}]`, obj(type, true));
    d.links.set('parent_bus', null);
    if (device !== undefined) d.links.set('device', device);
    drcLinks.links.set(hex(index), d);
  };
  const dev = (name: string, type: string, bus: QomObject | null, cpu = -1): QomObject => {
    const d = child(unattached, name, obj(type, true, cpu));
    d.links.set('parent_bus', bus);
    return d;
  };

  let k = 0;
  const xive = dev(`device[${k++}]`, 'spapr-xive', sysbus);
  xive.links.set('xive-fabric', machine);
  const endSource = child(xive, 'end_source', obj('xive-end-source', true));
  endSource.links.set('parent_bus', null);
  endSource.links.set('xive', xive);
  child(endSource, 'xive.end[0]', region());
  const source = child(xive, 'source', obj('xive-source', true));
  source.links.set('parent_bus', null);
  source.links.set('xive', xive);
  child(source, 'xive.esb-emulated[0]', region());
  child(source, 'xive.esb[0]', region());
  child(xive, 'xive.tima[0]', region());

  const cores: QomObject[] = [];
  for (let i = 0; i < smp; i++) {
    const core = dev(`device[${k++}]`, 'power9_v2.0-spapr-cpu-core', null);
    const cpu = child(core, 'thread[0]', obj('power9_v2.0-powerpc64-cpu', true, i));
    cpu.links.set('parent_bus', null);
    cpu.links.set('memory', system);
    child(cpu, 'unnamed-gpio-in[0]', obj('irq', false));
    child(cpu, 'unnamed-gpio-in[1]', obj('irq', false));
    const tctx = child(cpu, 'xive-tctx', obj('xive-tctx', true));
    tctx.links.set('parent_bus', null);
    tctx.links.set('presenter', xive);
    tctx.links.set('cpu', cpu);
    cores.push(core);
  }

  const vioBridge = dev(`device[${k++}]`, 'spapr-vio-bridge', sysbus);
  const vio = child(vioBridge, 'spapr-vio', obj('spapr-vio-bus', false));
  const nvram = dev(`device[${k++}]`, 'spapr-nvram', vio);
  vio.links.set('child[0]', nvram);
  vio.links.set('hotplug-handler', null);

  const phb = dev(`device[${k++}]`, 'spapr-pci-host-bridge', sysbus);
  child(phb, 'msi[0]', region());
  const pci = child(phb, 'pci.0', obj('PCI', false));
  pci.links.set('hotplug-handler', phb);
  for (const r of ['io-alias', 'io', 'iommu-root', 'mmio32-alias', 'mmio64-alias', 'mmio']) {
    child(phb, `pci@800000020000000.${r}[0]`, region());
  }
  for (const liobn of ['80000000', '80000001']) {
    const tce = child(phb, `tce-table-${liobn}`, obj('spapr-tce-table', true));
    tce.links.set('parent_bus', null);
    child(tce, `tce-iommu-${liobn}[0]`, obj('spapr-iommu-memory-region', false));
    child(tce, `tce-root-${liobn}[0]`, region());
  }
  for (let i = 0; i < PCI_DRCS; i++) addDrc(phb, DRC_PCI + i, 'spapr-drc-pci', undefined);

  child(unattached, 'io[0]', region());
  child(unattached, 'sysbus', sysbus);
  child(unattached, 'system[0]', system);
  [xive, vioBridge, phb].forEach((d, i) => {
    sysbus.links.set(`child[${i}]`, d);
  });
  sysbus.links.set('hotplug-handler', machine);

  cores.forEach((core, i) => {
    addDrc(machine, DRC_CPU + i, 'spapr-drc-cpu', core);
  });
  for (let i = 0; i < SPAPR_MAX_PHBS; i++)
    addDrc(machine, DRC_PHB + i, 'spapr-drc-phb', i === 0 ? phb : null);
  const rtc = child(machine, 'rtc', obj('spapr-rtc', true));
  rtc.links.set('parent_bus', null);
  for (let i = 1; i <= 4; i++)
    child(machine, `wdt${i}`, obj('spapr-wdt', true)).links.set('parent_bus', null);
  return root;
}

/** A property of `o`: a child, a link's target (null when unset), or undefined (no such object property). */
function component(o: QomObject, name: string): QomObject | null | undefined {
  return o.children.get(name) ?? o.links.get(name);
}

/** Follow `parts` from `o`; empty components are skipped. */
function resolveAbs(o: QomObject, parts: readonly string[], i: number): QomObject | null {
  for (let at: QomObject | null = o; ; i++) {
    if (i === parts.length) return at;
    const p = parts[i]!;
    if (p === '') continue;
    const next = component(at, p);
    if (next === undefined || next === null) return null;
    at = next;
  }
}

/**
 * The objects `parts` leads to from `o` and from every object of its composition subtree, one
 * entry per starting object (the same object reached twice counts twice, as in QEMU); stops
 * past one.
 */
function resolvePartial(o: QomObject, parts: readonly string[], found: QomObject[]): void {
  const hit = resolveAbs(o, parts, 0);
  if (hit !== null) found.push(hit);
  for (const c of o.children.values()) {
    if (found.length > 1) return;
    resolvePartial(c, parts, found);
  }
}

/**
 * Resolve a QOM path as `object_resolve_path(path, NULL)`: an absolute path (`/…`) walks child
 * and link properties from the root; a partial path is found from any object of the tree and
 * must be reached from exactly one object (ambiguous → null).
 */
export function resolveQomPath(root: QomObject, path: string): QomObject | null {
  const parts = path === '' ? [] : path.split('/');
  if (parts.length > 0 && parts[0] === '') return resolveAbs(root, parts, 1);
  const found: QomObject[] = [];
  resolvePartial(root, parts, found);
  return found.length === 1 ? found[0]! : null;
}

/**
 * The ablation of option 3 that decides the first half of its claim ("works only with a VMM that
 * tracks bind/unbind"): the kernel side of option 3 (`qemu-remap`) — nothing re-points the irq's pages —
 * with a VMM that does not act on bind and unbind. The guest keeps whatever page its ESB mapping
 * had before the bind: the IPI's, while the events now come from the function.
 */

import { XIVE_NATIVE_FIXED } from '../host/kvm/xive-native-flags.ts';
import { type Design, vmmSwitchesPages } from './design.ts';

export const qemuRemapUntracked: Design = {
  name: 'qemu-remap-untracked',
  accel: 'kvm',
  option: 3,
  summary: 'option 3 without the VMM tracking bind/unbind (an ablation): nothing re-points the pages',
  xiveFlags: { ...XIVE_NATIVE_FIXED },
  kernelSeam: (stats) => vmmSwitchesPages(stats),
};

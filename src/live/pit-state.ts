// KVM_GET_PIT2: the in-kernel PIT's channel state (arch/x86/kvm/x86.c kvm_vm_ioctl_get_pit2 copies
// kvm_kpit_state's channels; count_load_time is ktime_get(), i.e. host CLOCK_MONOTONIC ns).
import type { Ns } from '../core/index.ts';
import type { LiveVm } from './kvm.ts';
import * as U from './uapi.ts';

export interface KvmPitChannel {
  count: number;
  mode: number;
  gate: boolean;
  countLoadTime: Ns;
}

export function readPitState(vm: LiveVm): { channels: KvmPitChannel[]; flags: number } {
  const buf = new Uint8Array(U.KVM_PIT_STATE2_LAYOUT.size);
  vm.kvm.ioctl(vm.fd, U.KVM_GET_PIT2, buf, 'KVM_GET_PIT2');
  const dv = new DataView(buf.buffer);
  const C = U.KVM_PIT_CHANNEL_STATE_LAYOUT;
  const channels = [0, 1, 2].map((i) => {
    const at = U.KVM_PIT_STATE2_LAYOUT.channels + i * C.size;
    return {
      count: dv.getUint32(at + C.count, true),
      mode: dv.getUint8(at + C.mode),
      gate: dv.getUint8(at + C.gate) !== 0,
      countLoadTime: dv.getBigInt64(at + C.count_load_time, true),
    };
  });
  return { channels, flags: dv.getUint32(U.KVM_PIT_STATE2_LAYOUT.flags, true) };
}

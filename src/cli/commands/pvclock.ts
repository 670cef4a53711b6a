// `timevisor pvclock scale --tsc-khz N`: tsc_shift and tsc_to_system_mul exactly as KVM computes them
// (kvm_get_time_scale(NSEC_PER_SEC, tsc_khz * 1000), arch/x86/kvm/x86.c). Model only: no /dev/kvm.
import type { Command } from 'commander';
import { InputError } from '../../core/index.ts';
import { kvmclockScale } from '../../hypervisor/index.ts';

export function registerPvclock(program: Command): void {
  const pvclock = program.command('pvclock').description('kvmclock (pvclock) arithmetic as KVM and the guest compute it');
  pvclock
    .command('scale')
    .description('tsc_shift and tsc_to_system_mul KVM writes into the pvclock record for a TSC of N kHz')
    .requiredOption('--tsc-khz <khz>', 'TSC frequency in kHz, e.g. 2596136')
    .option('--json', 'print one JSON object')
    .action((opts: { tscKhz: string; json?: boolean }) => {
      const khz = Number(opts.tscKhz);
      if (!/^\d+$/.test(opts.tscKhz) || !Number.isSafeInteger(khz) || khz < 1 || khz > 0xffff_ffff) {
        throw new InputError(`expected a whole number of kHz between 1 and 4294967295, got "${opts.tscKhz}"`, '--tsc-khz');
      }
      const { shift, mul } = kvmclockScale(khz);
      if (opts.json) {
        process.stdout.write(JSON.stringify({ tsc_khz: khz, tsc_shift: shift, tsc_to_system_mul: mul }) + '\n');
      } else {
        process.stdout.write(`tsc_khz ${khz}: tsc_shift ${shift}, tsc_to_system_mul ${mul} (0x${mul.toString(16)})\n`);
      }
    });
}

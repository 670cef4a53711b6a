// The VMM's pause/resume events of one VM, and what the guest saw across each: offset before, right
// after resume, monotonic advance, and the offset once its sync (if any) acted.
import { InputError } from '../core/index.ts';
import { formatDuration } from '../core/index.ts';
import { atFirstTick, recordSync } from './moves.ts';
import type { GuestSync } from './sync.ts';
import { monotonicSaw, realtimeChange } from './verdicts.ts';
import type { PauseSummary } from './summary.ts';
import type { VmRun } from './vm-run.ts';
import type { World } from './world.ts';

export function schedulePauses(world: World, run: VmRun, sync: GuestSync | null): void {
  const { engine, trace } = world;
  const duration = world.scenario.durationNs;
  for (const p of run.vm.pauses) {
    const at = p.atNs;
    const len = p.durationNs;
    if (at > duration) continue;
    const summary: PauseSummary = {
      at_s: Number(at) / 1e9,
      duration_s: Number(len) / 1e9,
      offset_before_ns: '0',
      offset_after_resume_ns: null,
      monotonic_advance_ns: null,
      offset_after_sync_ns: null,
    };
    let monoBefore = 0n;
    engine.at(at, () => {
      if (!run.boot?.entered)
        throw new InputError(
          `pause at ${formatDuration(at)} comes before the guest kernel has started`,
          'scenario',
          `vms[${run.vm.index}].pauses`,
        );
      summary.offset_before_ns = String(run.offset(engine.now));
      monoBefore = run.boot.guest.clockGettime('monotonic');
      sync?.onPause();
      run.lifecycle!.pause(at + len);
      if (trace.on) trace.instant(engine.now, run.vm.name, 'qmp_stop', ['vm_stop']);
      run.pauses.push(summary);
    });
    if (at + len > duration) continue;
    engine.at(at + len, () => {
      run.lifecycle!.resume();
      if (trace.on) trace.instant(engine.now, run.vm.name, 'qmp_cont', ['vm_start']);
      let after = 0n;
      // the first tick after resume runs when vCPU 0 next runs; what the guest saw is read there
      atFirstTick(world, run, () => {
        run.boot!.guest.update(); // it accumulates the clocksource
        after = run.offset(engine.now);
        const advance = run.monotonic() - monoBefore;
        summary.offset_after_resume_ns = String(after);
        summary.monotonic_advance_ns = String(advance);
        run.events.push({
          kind: 'pause',
          at_s: summary.at_s,
          offset_before_ns: summary.offset_before_ns,
          offset_after_ns: summary.offset_after_resume_ns,
          monotonic_advance_ns: summary.monotonic_advance_ns,
          verdict: `paused ${formatDuration(len)}: ${realtimeChange(BigInt(summary.offset_before_ns), after)}; ${monotonicSaw(len, advance < 0n ? 0n : advance, 'pause')}`,
        });
        run.sample(engine.now);
      });
      // the management layer's sync starts from the resume itself (its guest side waits for the vCPU again)
      sync?.onResume(() => {
        summary.offset_after_sync_ns = String(run.offset(engine.now));
        recordSync(world, run, after);
      });
    });
  }
}

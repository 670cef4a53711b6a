// One scenario VM inside a running simulation: its booted guest, its lifecycle, and what is recorded
// of it. Reading and sampling its clocks against true time live here, once.
import type { Ns } from '../core/index.ts';
import type { Chronyd } from '../guest/index.ts';
import type { BootedVm, VmLifecycle } from '../vmm/index.ts';
import type { Host } from './host.ts';
import type { ResolvedVm } from './resolve.ts';
import { OffsetStats, ThinnedSeries, type TimelineRow } from './sampling.ts';
import type { PauseSummary, VmEvent } from './summary.ts';
import type { World } from './world.ts';

export class VmRun {
  boot: BootedVm | null = null;
  lifecycle: VmLifecycle | null = null;
  createdAt: Ns = 0n;
  readonly stats = new OffsetStats();
  readonly pauses: PauseSummary[] = [];
  readonly events: VmEvent[] = [];
  /** The guest's chronyd, with sync method chrony (once userspace has started). */
  chronyd: Chronyd | null = null;

  constructor(
    readonly vm: ResolvedVm,
    /** The host it runs on now (a migration or a restore elsewhere moves it). */
    public host: Host,
    private readonly world: World,
    private readonly emit: (row: TimelineRow) => void,
  ) {}

  /** A bounded, evenly thinned copy of the offsets (for sparklines and plots of very long runs). */
  readonly series = new ThinnedSeries();

  /** The guest kernel runs and can be read: entered and not paused. */
  get readable(): boolean {
    return this.boot?.entered === true && !(this.lifecycle?.paused ?? false);
  }

  /** Guest CLOCK_REALTIME minus true UTC at t. */
  offset(t: Ns): Ns {
    return this.boot!.guest.clockGettime('realtime') - this.world.truth(t);
  }

  /** Guest CLOCK_MONOTONIC now. */
  monotonic(): Ns {
    return this.boot!.guest.clockGettime('monotonic');
  }

  /** Record the guest's clocks at t into the timeline and the statistics. */
  sample(t: Ns): void {
    const g = this.boot!.guest;
    const truth = this.world.truth(t);
    // CLOCK_MONOTONIC from the same clocksource read: REALTIME + wall_to_monotonic (ktime_get's sum,
    // kernel/time/timekeeping.c), and a read at the same instant returns the same counter
    const real = g.clockGettime('realtime');
    const off = real - truth;
    this.emit({
      t,
      vm: this.vm.name,
      guestOffsetNs: off,
      monotonicLagNs: real + g.timekeeper.wallToMonotonic - (t - this.createdAt),
      hostOffsetNs: this.host.realtime(t) - truth,
    });
    this.stats.record(t, off);
    this.series.push(t, off);
  }
}

// Snapshots (the VMM saves the VM, it is gone for a while, then restored — on its host or another) and
// live migrations (a stop-and-copy downtime, then the VM runs on the destination), and steps of a host's
// own clock. What each VMM saves and restores is in src/vmm/snapshot.ts; the restore itself in
// src/vmm/machine.ts (restoreClockState).
import type { Ns } from '../core/index.ts';
import { formatDuration } from '../core/index.ts';
import { VmgenidDriver, whenVcpuRuns } from '../guest/index.ts';
import { predictGetClock } from '../hypervisor/index.ts';
import { moveClockPolicy, type RestoreOutcome, type VmClockState } from '../vmm/index.ts';
import type { GuestSync } from './sync.ts';
import { formatOffset, monotonicSaw, realtimeChange } from './verdicts.ts';
import type { VmRun } from './vm-run.ts';
import type { World } from './world.ts';

interface Stopped {
  state: VmClockState | null;
  offsetBefore: Ns;
  monoBefore: Ns;
  /** The guest's kvm-clock (vCPU 0's record at its TSC) minus the KVM_GET_CLOCK value saved, ns: 0 unless KVM_GET_CLOCK
   *  computes differently from the guest (mainline get_kvmclock with TSC scaling, src/hypervisor/clock-pair.ts). */
  getClockLag: Ns;
}

/** Stop the VM now and save its clocks (the VMM pauses a VM before saving it). */
function stopAndSave(world: World, run: VmRun, sync: GuestSync | null, resumeAt: Ns, marker: string): Stopped {
  const { engine, trace } = world;
  if (trace.on) trace.instant(engine.now, run.vm.name, marker, ['vm_stop']);
  const offsetBefore = run.offset(engine.now);
  const monoBefore = run.monotonic();
  sync?.onPause();
  run.lifecycle!.pause(resumeAt);
  const vm = run.boot!.vm;
  const state = vm.saveClockState({ clockGuest: run.vm.clockGuest });
  const v0 = vm.vcpus[0];
  const record = v0?.lastPvclock;
  const getClockLag =
    state && v0 && record
      ? predictGetClock(record, vm.hostTsc(), { tscOffset: v0.l1TscOffset, ratio: v0.l1TscScalingRatio, caps: vm.kvm!.tscScaling }) -
        state.clock.clock
      : 0n;
  return { state, offsetBefore, monoBefore, getClockLag };
}

// The guest's VMGenID driver per VM. It probes at boot (vmgenid_add); creating it at the first move
// instead is the same, since the buffer only changes when the VMM loads the VM again.
const vmgenidDrivers = new WeakMap<VmRun, VmgenidDriver>();

/** The VM runs again in a new VMM process: its VMGenID device is loaded and notifies the guest. Null: no device. */
function vmgenidLoad(run: VmRun): boolean | null {
  const dev = run.boot!.vm.vmgenid;
  if (!dev) return null;
  const guest = run.boot!.guest;
  let driver = vmgenidDrivers.get(run);
  if (!driver)
    vmgenidDrivers.set(
      run,
      (driver = new VmgenidDriver(
        () => dev.read(),
        (l) => guest.printk(l),
      )),
    );
  return dev.load() && driver.notify();
}

/** How many new VMGenID generations the guest saw (add_vmfork_randomness ran), or null without the device. */
export function vmgenidChanges(run: VmRun): number | null {
  if (!run.boot?.vm.vmgenid) return null;
  return vmgenidDrivers.get(run)?.reseeds ?? 0;
}

function restoreNote(outcome: RestoreOutcome, clockRealtime: boolean, kvm: boolean, tsc: boolean, getClockLag: Ns): string {
  const parts: string[] = [];
  if (outcome.clockGuest !== undefined) {
    // vms[].clock_guest: the documented procedure instead of the profile's own restore
    if (outcome.tscAdvanceNs !== undefined)
      parts.push(`the guest TSC moved on by the ${formatDuration(outcome.tscAdvanceNs)} the host's realtime advanced`);
    parts.push(
      outcome.clockGuest === 'set'
        ? 'KVM_SET_CLOCK_GUEST put back the saved pvclock record (kvmclock is the same function of the guest TSC)'
        : `KVM_SET_CLOCK_GUEST not used (${outcome.clockGuest}), so KVM_SET_CLOCK with KVM_CLOCK_REALTIME`,
    );
  } else if (kvm) parts.push(`kvmclock restored ${clockRealtime ? 'with' : 'without'} KVM_CLOCK_REALTIME`);
  if (kvm && !tsc && getClockLag !== 0n && outcome.clockGuest !== 'set')
    parts.push(
      `KVM_GET_CLOCK had saved ${formatDuration(getClockLag < 0n ? -getClockLag : getClockLag)} ${getClockLag > 0n ? 'less' : 'more'} than the guest's kvm-clock read (get_kvmclock's arithmetic differs from the guest's record)`,
    );
  if (kvm && tsc && outcome.clockGuest === undefined) parts.push('the TSC restored from the saved MSR_IA32_TSC');
  if (!kvm) parts.push('the emulated TSC and virtual clock restored where they stopped');
  if (outcome.tscKhzError) parts.push(`KVM_SET_TSC_KHZ failed, so the guest TSC runs at the destination's rate`);
  else if (outcome.tscCatchup) parts.push('no TSC scaling: KVM catches the guest TSC up at each entry');
  return parts.join('; ');
}

/** Resume on `hostName` with the saved clocks, and record the event. */
function restoreOn(
  world: World,
  run: VmRun,
  sync: GuestSync | null,
  stopped: Stopped,
  hostName: string,
  opts: { tscScaling: boolean; clockRealtime: boolean },
  describe: (change: string, mono: string, note: string) => { kind: 'restore' | 'migration'; verdict: string },
  gap: Ns,
  at: Ns,
  kindOf: 'restore' | 'migration',
): void {
  const { engine, trace } = world;
  const outcome = run.lifecycle!.restore(
    stopped.state,
    { ...world.restoreTarget(hostName, opts, run.vm.name), clockGuest: run.vm.clockGuest },
    kindOf,
  );
  const newGeneration = vmgenidLoad(run);
  // the device's ACPI notification and what the guest's vmgenid_notify made of it
  if (newGeneration !== null && trace.on) trace.instant(engine.now, run.vm.name, 'vmgenid_notify', [], { new_generation: newGeneration });
  if (trace.on) trace.instant(engine.now, run.vm.name, kindOf === 'restore' ? 'qemu_loadvm_state' : 'migration_completion', ['vm_start']);
  run.host = world.host(hostName);
  let after = 0n;
  atFirstTick(world, run, () => {
    run.boot!.guest.update(); // the first tick after the restore accumulates the clocksource
    after = run.offset(engine.now);
    recordRestore(world, run, stopped, outcome, opts, describe, gap, at, newGeneration, after);
  });
  // the management layer's sync starts from the restore itself (its guest side waits for the vCPU again)
  sync?.onResume(() => recordSync(world, run, after));
}

/**
 * Run `fn` at the guest's first tick after a resume or restore: when vCPU 0 (the timekeeping CPU, which takes
 * the tick in the model) next runs — at once when it runs now, else at its next slot on the host's CPUs.
 */
export function atFirstTick(world: World, run: VmRun, fn: () => void): void {
  const p = () => run.boot!.vm.platform;
  const gate = {
    vcpuRunning: (cpu: number) => p().vcpuRunning?.(cpu) ?? true,
    nextVcpuRun: (cpu: number) => p().nextVcpuRun?.(cpu) ?? world.engine.now,
  };
  whenVcpuRuns(world.engine, gate, 0, fn);
}

/** What the guest saw across a restore, read at its first tick after it. */
function recordRestore(
  world: World,
  run: VmRun,
  stopped: Stopped,
  outcome: RestoreOutcome,
  opts: { tscScaling: boolean; clockRealtime: boolean },
  describe: (change: string, mono: string, note: string) => { kind: 'restore' | 'migration'; verdict: string },
  gap: Ns,
  at: Ns,
  newGeneration: boolean | null,
  after: Ns,
): void {
  const { engine } = world;
  const advance = run.monotonic() - stopped.monoBefore;
  const g = run.boot!.guest;
  let note = restoreNote(outcome, opts.clockRealtime, stopped.state !== null, g.currentClocksource().trim() === 'tsc', stopped.getClockLag);
  if (newGeneration !== null)
    note += newGeneration
      ? '; VMGenID changed: the guest reseeded its CRNG'
      : '; VMGenID notified with the same GUID: nothing for the guest to do';
  const { kind, verdict } = describe(
    realtimeChange(stopped.offsetBefore, after),
    // a clock restored behind what the guest last read: CLOCK_MONOTONIC reads go back (clocksource_delta only
    // guards reads behind the last tick's cycle_last)
    advance < 0n ? `MONOTONIC went back ${formatDuration(-advance)}` : monotonicSaw(gap, advance, 'gap'),
    note,
  );
  run.events.push({
    kind,
    at_s: Number(at) / 1e9,
    offset_before_ns: String(stopped.offsetBefore),
    offset_after_ns: String(after),
    monotonic_advance_ns: String(advance),
    ...(newGeneration !== null ? { vmgenid_changed: newGeneration } : {}),
    verdict,
  });
  run.sample(engine.now);
}

/** The sync acted after a resume: record what it did. */
export function recordSync(world: World, run: VmRun, before: Ns): void {
  const now = world.engine.now;
  const after = run.offset(now);
  const how = run.vm.sync.method === 'agent' ? "the agent's guest-set-time" : 'the NTP client';
  run.events.push({
    kind: 'sync',
    at_s: Number(now) / 1e9,
    offset_before_ns: String(before),
    offset_after_ns: String(after),
    monotonic_advance_ns: null,
    verdict: `${how} put REALTIME from ${formatOffset(before)} to ${formatOffset(after)}`,
  });
  run.sample(now);
}

export function scheduleSnapshots(world: World, run: VmRun, sync: GuestSync | null): void {
  const { engine } = world;
  const end = world.scenario.durationNs;
  const policy = moveClockPolicy(run.vm.profile.name);
  for (const sn of run.vm.snapshots) {
    let stopped: Stopped | null = null;
    const back = sn.atNs + sn.restoreAfterNs;
    engine.at(sn.atNs, () => {
      stopped = stopAndSave(world, run, sync, back, 'qemu_savevm_state');
      run.events.push({
        kind: 'snapshot',
        at_s: Number(sn.atNs) / 1e9,
        offset_before_ns: String(stopped.offsetBefore),
        offset_after_ns: null,
        monotonic_advance_ns: null,
        verdict: `saved by the VMM (${stopped.state ? "KVM_GET_CLOCK, each vCPU's TSC and MSRs" : "QEMU's CPU and timer state"}); the VM is gone for ${formatDuration(sn.restoreAfterNs)}`,
      });
    });
    if (back > end) continue;
    const clockRealtime = policy.clockRealtime === 'always' || (policy.clockRealtime === 'option' && sn.clockRealtime === true);
    const hostName = sn.restoreOn ?? run.vm.host;
    engine.at(back, () =>
      restoreOn(
        world,
        run,
        sync,
        stopped!,
        hostName,
        { tscScaling: true, clockRealtime },
        (change, mono, note) => ({
          kind: 'restore',
          verdict: `restored ${formatDuration(sn.restoreAfterNs)} later${sn.restoreOn ? ` on ${hostName}` : ''}: ${change}; ${mono} (${note})`,
        }),
        sn.restoreAfterNs,
        back,
        'restore',
      ),
    );
  }
}

export function scheduleMigrations(world: World, run: VmRun, sync: GuestSync | null): void {
  const { engine } = world;
  const end = world.scenario.durationNs;
  const policy = moveClockPolicy(run.vm.profile.name);
  for (const m of run.vm.migrations) {
    let stopped: Stopped | null = null;
    const back = m.atNs + m.downtimeNs;
    engine.at(m.atNs, () => {
      stopped = stopAndSave(world, run, sync, back, 'qmp_migrate');
    });
    if (back > end) continue;
    engine.at(back, () => {
      const from = run.host.name;
      const fromKhz = run.host.tsc.freqKhz;
      const toKhz = world.host(m.to).tsc.freqKhz;
      const rate = fromKhz === toKhz ? '' : `, TSC ${fromKhz} → ${toKhz} kHz${m.tscScaling ? ' with TSC scaling' : ' without TSC scaling'}`;
      restoreOn(
        world,
        run,
        sync,
        stopped!,
        m.to,
        { tscScaling: m.tscScaling, clockRealtime: policy.clockRealtime === 'always' },
        (change, mono, note) => ({
          kind: 'migration',
          verdict: `migrated ${from} → ${m.to} (${formatDuration(m.downtimeNs)} downtime${rate}): ${change}; ${mono} (${note})`,
        }),
        m.downtimeNs,
        m.atNs,
        'migration',
      );
    });
  }
}

/** Steps of each host's own CLOCK_REALTIME, and what every running guest on it saw. */
export function scheduleHostSteps(world: World, runs: readonly VmRun[]): void {
  const { engine } = world;
  for (const h of world.scenario.hosts) {
    const host = world.host(h.name);
    for (const st of h.realtimeSteps) {
      engine.at(st.atNs, () => {
        const on = runs.filter((r) => r.host === host && r.readable);
        const before = on.map((r) => r.offset(engine.now));
        host.stepRealtime(st.byNs);
        for (const [i, r] of on.entries()) {
          const after = r.offset(engine.now);
          r.events.push({
            kind: 'host_step',
            at_s: Number(st.atNs) / 1e9,
            offset_before_ns: String(before[i]),
            offset_after_ns: String(after),
            monotonic_advance_ns: '0',
            verdict: `host ${h.name}'s REALTIME stepped ${st.byNs < 0n ? '-' : '+'}${formatDuration(st.byNs < 0n ? -st.byNs : st.byNs)}: ${realtimeChange(before[i]!, after)} in the guest (kvmclock counts the host's raw monotonic time; an agent sync would copy the host's new time)`,
          });
        }
      });
    }
  }
}

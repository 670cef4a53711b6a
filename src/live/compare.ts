// Each live experiment's key quantities beside its twin's, with their difference: what
// `timevisor kvm EXPERIMENT` prints and `timevisor kvm compare EXPERIMENT` tabulates.
import type { KvmclockReport } from './exp-kvmclock.ts';
import type { LapicReport } from './exp-lapic.ts';
import type { PitReport } from './exp-pit.ts';
import type { RtcReport } from './exp-rtc.ts';

export interface CompareRow {
  quantity: string;
  live: string;
  twin: string;
  /** live − twin where both are numbers, else "same" / "differs". */
  difference: string;
}

function num(quantity: string, live: number | bigint, twin: number | bigint, unit = ''): CompareRow {
  const d = typeof live === 'bigint' || typeof twin === 'bigint' ? BigInt(live) - BigInt(twin) : Number((live - twin).toFixed(3));
  const sign = d > 0 ? '+' : '';
  return { quantity, live: `${live}${unit}`, twin: `${twin}${unit}`, difference: `${sign}${d}${unit}` };
}

function text(quantity: string, live: string, twin: string): CompareRow {
  return { quantity, live, twin, difference: live === twin ? 'same' : 'differs' };
}

export function pitRows(r: PitReport): CompareRow[] {
  const rows = [
    num(`IRQ0 for the periods of ${r.seconds} s`, r.live.delivered, r.twin.delivered),
    num(`IRQ0 handled within ${r.seconds} s`, r.live.inWindow, r.twin.delivered),
    num('PIT periods ended in the window', r.live.expected, r.twin.expected),
    text(
      'IRQ0 lateness p50 / p99 / max',
      `${r.live.latenessNs.p50} / ${r.live.latenessNs.p99} / ${r.live.latenessNs.max} ns`,
      `0 / 0 / 0 ns`,
    ),
  ];
  for (const [k, v] of Object.entries(r.live.traceCounts ?? {})) rows.push(num(`host trace ${k}`, v, r.twin.traceCounts?.[k] ?? 0));
  if (r.live.timerSpanPeriods)
    rows.push(num('host pit_timer_fn vs periods first→last expiry', r.live.traceCounts!.pit_timer_fn!, r.live.timerSpanPeriods));
  if (r.live.bpfMisses !== undefined) rows.push(num('BPF runs the host skipped (recursion_misses)', r.live.bpfMisses, 0));
  return rows;
}

export function lapicRows(r: LapicReport): CompareRow[] {
  const rows = [
    num(`interrupts in ${r.seconds} s`, r.live.interrupts, r.twin.interrupts),
    num('rate', r.live.rateHz, r.twin.rateHz, ' Hz'),
    num('mean interval − period', r.live.meanExcessNs, r.twin.meanExcessNs, ' ns'),
  ];
  for (const [k, v] of Object.entries(r.live.traceCounts ?? {})) rows.push(num(`host trace ${k}`, v, r.twin.traceCounts?.[k] ?? 0));
  if (r.live.timerSpanPeriods)
    rows.push(num('host apic_timer_fn vs periods first→last expiry', r.live.traceCounts!.apic_timer_fn!, r.live.timerSpanPeriods));
  if (r.live.bpfMisses !== undefined) rows.push(num('BPF runs the host skipped (recursion_misses)', r.live.bpfMisses, 0));
  return rows;
}

export function kvmclockRows(r: KvmclockReport): CompareRow[] {
  const s = r.samples.at(-1)!;
  const rows = [
    num('tsc_to_system_mul', s.record.tscToSystemMul, r.twin.tscToSystemMul),
    num('tsc_shift', s.record.tscShift, r.twin.tscShift),
    num('pvclock flags', s.record.flags, r.twin.flags),
    num('KVM_GET_CLOCK (live) vs model prediction from the record', s.getClock, s.model, ' ns'),
    num("KVM_GET_CLOCK − the guest's own kvmclock read", s.getClock - s.guestNs, 0n, ' ns'),
  ];
  for (const [k, v] of Object.entries(r.live.traceCounts ?? {})) rows.push(num(`host trace ${k}`, v, r.twin.traceCounts?.[k] ?? 0));
  return rows;
}

export function rtcRows(r: RtcReport): CompareRow[] {
  return r.live.map((l, i) => text(`read ${i + 1} at +${(Number(l.atNs) / 1e9).toFixed(6)} s`, l.line, r.twin[i]?.line ?? '—'));
}

/** A fixed-width table of rows. */
export function formatRows(rows: CompareRow[]): string {
  const head: CompareRow = { quantity: 'quantity', live: 'live (/dev/kvm)', twin: 'twin (model)', difference: 'difference' };
  const all = [head, ...rows];
  const w = (k: keyof CompareRow) => Math.max(...all.map((r) => r[k].length));
  const [a, b, c] = [w('quantity'), w('live'), w('twin')];
  return all.map((r) => `${r.quantity.padEnd(a)}  ${r.live.padEnd(b)}  ${r.twin.padEnd(c)}  ${r.difference}`.trimEnd()).join('\n');
}

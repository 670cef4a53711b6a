// `timevisor kvm rtc`: the micro-guest reads the CMOS RTC through the UIP handshake (Linux's
// mc146818_get_time order) and prints it over the 16550; the RTC is the device model (devices/rtc.ts)
// on the host clock, started like QEMU's `-rtc base=utc` (rtc_set_date_from_host: whole seconds of
// host UTC, its seconds then tick from the moment it was created). The guest reads once, then at each
// of the next seconds' start. The twin reads the model RTC, started the same way, at the same moments
// on a simulated clock.
import { Engine } from '../core/index.ts';
import { InputError } from '../core/index.ts';
import { NSEC_PER_SEC, type Ns } from '../core/index.ts';
import { noIrq } from '../devices/index.ts';
import { CmosRtc } from '../devices/index.ts';
import { buildGuest } from './guest-build.ts';
import { LiveKvm } from './kvm.ts';
import type { CpuidPolicy } from './cpuid.ts';
import { LiveMachine } from './vmm.ts';

export interface RtcRead {
  /** What the guest printed, e.g. "rtc 2026-11-27 16:05:49". */
  line: string;
  /** When the guest had read it (host CLOCK_MONOTONIC − the RTC's creation), ns. */
  atNs: Ns;
}

export interface RtcReport {
  /** Host UTC seconds the RTC started from, and how far into that second the host was (ms). */
  baseSeconds: bigint;
  baseFractionMs: number;
  live: RtcRead[];
  twin: RtcRead[];
  /** For reads after the first: how long after the RTC's second began the guest read it (ns). */
  edgeLatencyNs: Ns[];
}

/** The guest's line for an RTC the way the guest formats it (BCD as stored, century byte first). */
function readLikeGuest(rtc: CmosRtc): string {
  const reg = (i: number) => {
    rtc.portWrite(0x70, 1, i);
    return rtc.portRead(0x71, 1);
  };
  const hex = (v: number) => v.toString(16).padStart(2, '0');
  const [sec, min, hour, mday, mon, year, century] = [0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32].map(reg) as number[];
  return `rtc ${hex(century!)}${hex(year!)}-${hex(mon!)}-${hex(mday!)} ${hex(hour!)}:${hex(min!)}:${hex(sec!)}`;
}

export async function rtcExperiment(o: { reads: number; cpuid?: (tscKhz: number) => CpuidPolicy }): Promise<RtcReport> {
  if (!Number.isInteger(o.reads) || o.reads < 1 || o.reads > 10) throw new InputError(`expected 1..10 reads, got "${o.reads}"`, '--reads');
  const k = LiveKvm.open();
  try {
    const nowMs = Date.now();
    const baseSeconds = BigInt(Math.floor(nowMs / 1000));
    const m = new LiveMachine(k, {
      guest: buildGuest('rtc'),
      params: [o.reads],
      rtcBaseSeconds: baseSeconds,
      ...(o.cpuid ? { cpuid: o.cpuid } : {}),
    });
    const created = BigInt(m.rtc.saveState().lastUpdate); // the RTC's clock at creation: its seconds start here
    m.start();
    const rtcLine = /^rtc /;
    const deadline = Date.now() + 5000 + o.reads * 1500;
    while (m.serialLines.filter((l) => rtcLine.test(l.text)).length < o.reads) {
      if (Date.now() > deadline) await m.waitForLine(/^never$/, 1); // throws with what the guest printed
      await new Promise((r) => setTimeout(r, 20));
    }
    await m.stop();
    const marks = m.markTimes.map((t) => t - created);
    const live = m.serialLines.filter((l) => rtcLine.test(l.text)).map((l, i) => ({ line: l.text, atNs: marks[i]! }));
    return {
      baseSeconds,
      baseFractionMs: nowMs % 1000,
      live,
      twin: simulateRtc(
        baseSeconds,
        live.map((r) => r.atNs),
      ),
      edgeLatencyNs: live.slice(1).map((r) => r.atNs % NSEC_PER_SEC),
    };
  } finally {
    k.close();
  }
}

/** The twin: the model RTC created at 0 from the same base, read as the guest reads it at each moment. */
export function simulateRtc(baseSeconds: bigint, at: Ns[]): RtcRead[] {
  const engine = new Engine();
  const rtc = new CmosRtc({ scheduler: engine, irq: noIrq, baseSeconds });
  return at.map((t) => {
    engine.run(t);
    return { line: readLikeGuest(rtc), atNs: t };
  });
}

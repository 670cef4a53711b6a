// Figures for docs/chrony.md: runs the three scenarios in docs/chrony/ and prints, per scenario, when
// chronyd stepped, when the guest got (and stayed) under 1 ms, the RMS of its true offset after that,
// chrony's own RMS offset, and when its frequency locked (stayed within 0.1 ppm of its final value).
//   node --import tsx scripts/chrony-figures.ts
import { resolve } from 'node:path';
import { loadScenario } from '../src/world/scenario.ts';
import { simulate } from '../src/world/simulation.ts';

for (const name of ['step-60s', 'slew-500ms', 'freq-50ppm']) {
  const s = loadScenario(resolve(import.meta.dirname, `../docs/chrony/${name}.yaml`));
  const { summary, timeline } = simulate(s);
  const vm = summary.vms[0]!;
  const ev = vm.chrony_updates ?? [];
  const start = ev.length > 0 ? ev[0]!.at_s : 0;
  const chronyStart = start - 4.2; // the first update follows the third iburst reply, 4.2 s after chronyd starts
  const rows = timeline.filter((r) => r.vm === vm.name && Number(r.t) / 1e9 >= chronyStart);
  const maxAbs = rows.reduce((m, r) => Math.max(m, Math.abs(Number(r.guestOffsetNs))), 0);
  let under = rows.length;
  for (let i = rows.length - 1; i >= 0; i--) {
    const o = rows[i]!.guestOffsetNs;
    if (o >= 1_000_000n || o <= -1_000_000n) break;
    under = i;
  }
  const underAt = under === 0 ? chronyStart : under < rows.length ? Number(rows[under]!.t) / 1e9 : NaN;
  const after = rows.filter((r) => Number(r.t) / 1e9 >= Math.max(underAt, 3600));
  const rms = Math.sqrt(after.reduce((a, r) => a + Number(r.guestOffsetNs) ** 2, 0) / after.length);
  const finalFreq = vm.chrony!.frequency_ppm;
  let lock = ev.length;
  for (let i = ev.length - 1; i >= 0 && Math.abs(ev[i]!.frequency_ppm - finalFreq) < 0.1; i--) lock = i;
  const step = ev.find((e) => e.kind === 'step');
  console.log(
    JSON.stringify({
      scenario: name,
      chronyd_start_s: +chronyStart.toFixed(3),
      step_after_s: step ? +(step.at_s - chronyStart).toFixed(3) : null,
      step_s: step ? +step.offset_s.toFixed(6) : null,
      max_abs_offset_after_start_us: +(maxAbs / 1000).toFixed(1),
      under_1ms_after_s: +(underAt - chronyStart).toFixed(1),
      rms_true_offset_us_after_1h: +(rms / 1000).toFixed(2),
      chrony_rms_offset_us: +(vm.chrony!.rms_offset_s * 1e6).toFixed(2),
      frequency_lock_after_s: lock < ev.length ? +(ev[lock]!.at_s - chronyStart).toFixed(1) : null,
      final_frequency_ppm: +finalFreq.toFixed(3),
      skew_ppm: +vm.chrony!.skew_ppm.toFixed(4),
      updates: vm.chrony!.updates,
      poll_interval_s: vm.chrony!.update_interval_s,
    }),
  );
}

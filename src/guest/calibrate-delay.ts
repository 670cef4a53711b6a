// init/calibrate.c calibrate_delay() on x86 when the loops-per-jiffy value is known without timing the
// delay loop: preset_lpj (kvmclock_init → kvm_get_preset_lpj: the pvclock kHz · 1000 / HZ) or lpj_fine
// (tsc_init → get_loops_per_jiffy: tsc_khz · 1000 / HZ). A measured calibration is not modelled (null).

/** The line calibrate_delay prints, with BogoMIPS as "%lu.%02lu" of lpj/(500000/HZ) and (lpj/(5000/HZ)) % 100. */
export function calibrateDelayLine(presetLpj: number | null, lpjFine: number | null, hz: number): string | null {
  const bogo = (lpj: number) =>
    `${Math.floor(lpj / Math.floor(500_000 / hz))}.${String(Math.floor(lpj / Math.floor(5_000 / hz)) % 100).padStart(2, '0')} BogoMIPS (lpj=${lpj})`;
  if (presetLpj) return `Calibrating delay loop (skipped) preset value.. ${bogo(presetLpj)}`;
  if (lpjFine) return `Calibrating delay loop (skipped), value calculated using timer frequency.. ${bogo(lpjFine)}`;
  return null;
}

/** loops per jiffy for a kHz rate: khz · 1000 / HZ, truncated (do_div). */
export function lpjFromKhz(khz: number, hz: number): number {
  return Math.floor((khz * 1000) / hz);
}

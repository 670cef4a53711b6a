// doctor: what one clock_gettime costs on this machine, through the vDSO and as a real system call
// (koffi overhead subtracted), and how long a whole doctor report takes.
import { join } from 'node:path';
import type { Bench } from './run.ts';
import { measureClockCost } from '../src/doctor/vdso.ts';
import { runDoctor } from '../src/doctor/doctor.ts';
import { recordedSource } from '../src/doctor/source.ts';

const bench: Bench = async (report) => {
  const cost = measureClockCost(5000, 7);
  if (!cost.ok) {
    report({ name: 'clock_gettime cost', value: 0, unit: '-', note: cost.reason });
  } else {
    report({ name: 'koffi call overhead (memchr n=0)', value: cost.value.ffiOverheadNs, unit: 'ns', note: 'subtracted below' });
    for (const c of cost.value.clocks) {
      const name = c.clock.replace('CLOCK_', '');
      report({ name: `${name} via vDSO`, value: c.vdsoNs, unit: 'ns', note: `raw ${c.rawVdsoNs} ns` });
      report({ name: `${name} via syscall`, value: c.syscallNs, unit: 'ns', note: `raw ${c.rawSyscallNs} ns` });
    }
  }
  let t0 = process.hrtime.bigint();
  await runDoctor({ measure: false, stealIntervalMs: 0 });
  report({ name: 'doctor report, live, no measurement', value: Number(process.hrtime.bigint() - t0) / 1e6, unit: 'ms' });
  t0 = process.hrtime.bigint();
  await runDoctor({ source: recordedSource(join(import.meta.dirname, '../test/fixtures/doctor/firecracker-pvm')) });
  report({ name: 'doctor report, recorded tree', value: Number(process.hrtime.bigint() - t0) / 1e6, unit: 'ms' });
};
export default bench;

// One line per VM that says whether its wall clock ends the run right: within 1 ms (what an NTP-synced
// guest on a LAN keeps), within 128 ms (ntpd's step threshold, the scenarios' ntp_step_threshold default:
// below it a time service only slews), or beyond.
import { formatDuration } from '../core/index.ts';
import type { SimulationSummary, VmSummary } from '../world/index.ts';

export type VerdictLevel = 'ok' | 'warn' | 'bad';

export interface Verdict {
  vm: string;
  level: VerdictLevel;
  text: string;
}

const OK_NS = 1_000_000n;
const WARN_NS = 128_000_000n;

const abs = (v: bigint) => (v < 0n ? -v : v);

export function vmVerdict(v: VmSummary): Verdict {
  const end = BigInt(v.final_offset_ns);
  const a = abs(end);
  const dir = end < 0n ? 'behind' : 'ahead';
  const worst = formatDuration(BigInt(v.max_abs_offset_ns));
  if (a <= OK_NS) return { vm: v.name, level: 'ok', text: `in time: ${formatDuration(a)} ${dir} at the end (worst ${worst})` };
  if (a <= WARN_NS)
    return {
      vm: v.name,
      level: 'warn',
      text: `drifting: ${formatDuration(a)} ${dir} at the end, ${v.drift_ppm.toFixed(3)} ppm (worst ${worst})`,
    };
  return { vm: v.name, level: 'bad', text: `wrong: ${formatDuration(a)} ${dir} at the end and nothing put it right (sync: ${v.sync})` };
}

export function verdicts(s: SimulationSummary): Verdict[] {
  return s.vms.map(vmVerdict);
}

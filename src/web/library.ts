// The scenarios the web UI offers to start from: the demo and a short pause that runs in well under a second.
import { DEMO_SCENARIO_YAML } from '../world/index.ts';

export interface LibraryScenario {
  id: string;
  title: string;
  yaml: string;
}

const PAUSE_15MIN = `# Two guests for 15 minutes, both paused for a minute at 5 min: one put right by the guest agent, one by NTP.
name: pause-15min
seed: 7
start: "2026-01-01T00:00:00Z"
duration: 15min
sample_interval: 10s
hosts:
  - name: host0
    oscillator: { ppm: 8.0 }
    tsc: { freq_khz: 2596136 }
vms:
  - name: vm-agent
    host: host0
    profile: qemu-kvm-noinvtsc
    update_interval: 10s
    pauses: [{ at: 5min, duration: 1min }]
    sync: { method: agent, agent_delay: 1s }
  - name: vm-ntp
    host: host0
    profile: qemu-kvm-noinvtsc
    update_interval: 10s
    pauses: [{ at: 5min, duration: 1min }]
    sync: { method: ntp, ntp_poll_exp: 4 }
`;

export const LIBRARY: readonly LibraryScenario[] = [
  { id: 'demo', title: 'demo: one day, a 15-minute pause, four ways to keep time', yaml: DEMO_SCENARIO_YAML },
  { id: 'pause-15min', title: 'pause-15min: agent vs NTP after a one-minute pause', yaml: PAUSE_15MIN },
];

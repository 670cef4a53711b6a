// The built-in demo scenario `timevisor run` uses with no file: one day on a host whose crystal runs
// 12 ppm fast, four guests, one 15-minute pause at 06:00 for three of them.
//   - vm-kvmclock: QEMU without invariant TSC, so the guest stays on kvm-clock; QEMU saves and
//     restores kvmclock across the pause, so the guest's wall clock falls 15 min behind and stays
//     there, and the crystal's 12 ppm adds up on top.
//   - vm-agent: the same guest, but the management layer calls the guest agent's guest-set-time
//     after the resume: the lag is gone a second later; the drift comes back.
//   - vm-ntp: the same guest with an NTP client: it steps the clock back after the pause and
//     disciplines the 12 ppm away.
//   - vm-tsc: QEMU with invariant TSC: the guest switches to the tsc clocksource, which keeps counting
//     through the pause, so its wall clock never falls behind (its monotonic clock jumps instead).
export const DEMO_SCENARIO_YAML = `# timevisor demo: what a pause and a crystal do to guest clocks in a day
name: demo
seed: 42
start: "2026-01-01T00:00:00Z"
duration: 1d
sample_interval: 10min
hosts:
  - name: host0
    oscillator: { ppm: 12.0, wander_sigma_ppm: 0.002, wander_interval: 10s }
    tsc: { freq_khz: 2596136, constant: true, nonstop: true, invariant: true }
    ntp: true
vms:
  - name: vm-kvmclock
    host: host0
    profile: qemu-kvm-noinvtsc
    update_interval: 10s
    pauses: [{ at: 6h, duration: 15min }]
  - name: vm-agent
    host: host0
    profile: qemu-kvm-noinvtsc
    update_interval: 10s
    pauses: [{ at: 6h, duration: 15min }]
    sync: { method: agent, agent_delay: 1s }
  - name: vm-ntp
    host: host0
    profile: qemu-kvm-noinvtsc
    pauses: [{ at: 6h, duration: 15min }]
    sync: { method: ntp }
  - name: vm-tsc
    host: host0
    profile: qemu-kvm
    update_interval: 10s
    pauses: [{ at: 6h, duration: 15min }]
`;

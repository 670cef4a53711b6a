// The built-in demo scenario `timevisor run` uses with no file: one day, two VMs on one host whose
// crystal runs 12 ppm fast with a little wander. One guest set its clock from kvmclock (ns precise),
// the other from the CMOS RTC (whole seconds); neither runs NTP, so both drift with the crystal.
export const DEMO_SCENARIO_YAML = `# timevisor demo: what a free-running guest clock does in a day
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
    profile: qemu-kvm
    boot_at: 0.25s
  - name: vm-rtc
    host: host0
    profile: qemu-kvm
    wall_clock: rtc
    boot_at: 0.75s
`;

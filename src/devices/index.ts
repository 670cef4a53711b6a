// devices: register-level timer devices, each a pure state machine driven by port/MMIO/MSR accesses.
//
// How to use one (the same for all of them):
//
//   const engine = new Engine();                       // or any Scheduler (a live backend)
//   const irq8 = new RecordingIrq();                   // or your own IrqLine { raise(): boolean; lower() }
//   const rtc = new CmosRtc({ scheduler: engine, irq: irq8, baseSeconds: 1_700_000_000n });
//   rtc.portWrite(0x70, 1, RTC_REG_A);                 // select register A
//   const a = rtc.portRead(0x71, 1);                   // bit 7 = UIP
//   engine.run(engine.now + 1_000_000_000n);           // time moves only when the scheduler moves it
//   const saved = rtc.saveState();                     // plain, versioned JSON-serializable data
//   rtc.restore(saved);
//
// Dependencies every device takes ({@link DeviceDeps}): `scheduler` (runs its timers), `clock` (its time
// base; defaults to scheduler.now), `irq` (its interrupt line), `trace` and `name` (optional).
// No device reads the wall clock: for `-rtc base=utc|localtime` the caller passes host time to
// rtcBaseSeconds().
//
// Public surface per device:
//   CmosRtc      ports 0x70/0x71   portRead/portWrite, guestRtcNs(), getCmosData/setCmosData
//   Pit          ports 0x40-0x43   portRead/portWrite, setGate/getGate/getOut, setIrqDisabled() (HPET
//                                 legacy); QEMU's userspace PIT. Its registers and counting are PitCommon,
//                                 which KVM's in-kernel PIT (src/hypervisor KvmPit) shares; SpeakerPort is 0x61
//   Hpet         MMIO 0xfed00000   mmioRead/mmioWrite (offset in the 1 KiB block), counter()
//   AcpiPmTimer  ports base..+11   portRead/portWrite: PM1_STS +0, PM1_EN +2, PM1_CNT +4, PM_TMR +8
//   LapicTimer   APIC page regs    readReg/writeReg (0x320 LVTT, 0x380 TMICT, 0x390 TMCCT, 0x3e0 TDCR),
//                                 msrRead/msrWrite (0x6e0 TSC deadline, x2APIC 0x832/0x838/0x839/0x83e),
//                                 setRunState('running'|'halted'|'preempted') for KVM's hv/sw timer switch
//   Serial16550  ports 0x3f8-0x3ff portRead/portWrite, receive(byte); transmit callback (the chardev)
//   PortBus / MmioBus  map ranges to devices and split wide accesses as QEMU's memory core does
//   PcMachine    QEMU's `pc` board with all of the above (PIT/RTC through the HPET's legacy gate, PM block
//                relocatable through PIIX4 PCI config), saveState()/restore() of the whole board, and
//                timerEventBound(span) to size a step before taking it; QtestSession speaks qtest to it
//
// Snapshots: saveState() returns plain data with 64-bit values as decimal strings; restore() expects the
// device's clock to continue from where it was saved (as QEMU's migrated QEMU_CLOCK_VIRTUAL does). The
// HPET re-derives its timers from the saved counter, so it can also be restored onto another clock.
// Interrupts: a device calls irq.raise()/lower(); raise() returns false when the interrupt coalesced with
// an undelivered one (the RTC's slew policy counts those). RecordingIrq is a ready-made line for tests.
export * from './irq.ts';
export * from './lateness-histogram.ts';
export * from './bus.ts';
export { type DeviceDeps, muldiv64, timerEventBound } from './common.ts';
export * from './rtc.ts';
export * from './pit.ts';
export * from './hpet.ts';
export * from './acpi-pm.ts';
export * from './lapic-timer.ts';
export * from './pc.ts';
export * from './qtest.ts';
export * from './serial.ts';

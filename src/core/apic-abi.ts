// The x86 local APIC's architectural numbers the guest, the timer device and KVM all program or decode:
// timer registers (xAPIC offsets and their x2APIC MSRs, 0x800 + offset/16), the LVT timer mode bits,
// IA32_TSC_DEADLINE, and the vectors Linux puts its timer interrupts on
// (arch/x86/include/asm/apicdef.h, msr-index.h, irq_vectors.h).
export const APIC_LVTT = 0x320;
export const APIC_TMICT = 0x380;
export const APIC_TMCCT = 0x390;
export const APIC_TDCR = 0x3e0;
export const MSR_IA32_TSC_DEADLINE = 0x6e0;
export const X2APIC_LVTT = 0x832;
export const X2APIC_TMICT = 0x838;
export const X2APIC_TMCCT = 0x839;
export const X2APIC_TDCR = 0x83e;

export const APIC_LVT_MASKED = 1 << 16;
export const APIC_LVT_TIMER_ONESHOT = 0;
export const APIC_LVT_TIMER_PERIODIC = 1 << 17;
export const APIC_LVT_TIMER_TSCDEADLINE = 2 << 17;

/** ISA_IRQ_VECTOR(0): where the IO-APIC/PIC puts IRQ0. */
export const IRQ0_VECTOR = 0x30;
/** LOCAL_TIMER_VECTOR: the LVT timer vector Linux programs. */
export const LOCAL_TIMER_VECTOR = 0xec;

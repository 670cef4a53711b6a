# kvm lapic: arm the local APIC timer through x2APIC MSRs (no MMIO needed in real mode) in the mode in
# MB_PARAM0 (0 one-shot, 1 periodic, 2 TSC-deadline) with MB_PARAM1 = initial count (divide by 1, so
# bus cycles = ns on KVM's 1 GHz APIC bus) or TSC cycles to the next deadline. Each interrupt (vector
# 0x40) is counted in MB_COUNT, EOI'd, re-armed in one-shot and TSC-deadline modes, and reported on
# TICK_PORT. The first arming is reported on MARK_PORT.
	.include "common.inc"
	.set IA32_APIC_BASE, 0x1b
	.set X2APIC_EOI, 0x80b
	.set X2APIC_SVR, 0x80f
	.set X2APIC_LVTT, 0x832
	.set X2APIC_TMICT, 0x838
	.set X2APIC_TDCR, 0x83e
	.set IA32_TSC_DEADLINE, 0x6e0
	.code16
	.globl _start
_start:
	SETUP
	movw $isr, 0x40*4
	movw $0, 0x40*4+2
	PIC_INIT $0xff			# the 8259A stays masked: only the LAPIC timer interrupts
	movl $IA32_APIC_BASE, %ecx	# enable the APIC in x2APIC mode (EN | EXTD)
	rdmsr
	orl $0xc00, %eax
	wrmsr
	movl $X2APIC_SVR, %ecx		# software-enable, spurious vector 0xff
	movl $0x1ff, %eax
	xorl %edx, %edx
	wrmsr
	movl $X2APIC_TDCR, %ecx		# divide by 1
	movl $0xb, %eax
	wrmsr
	movl MB_PARAM0, %eax		# LVTT: vector 0x40, timer mode bits 17-18
	shll $17, %eax
	orl $0x40, %eax
	movl $X2APIC_LVTT, %ecx
	wrmsr
	call arm
	movw $MARK_PORT, %dx
	outb %al, %dx
	movw $started, %si
	PUTS
	sti
1:	hlt
	jmp 1b

# (Re)arm: periodic and one-shot write TMICT (periodic only the first time), TSC-deadline writes
# IA32_TSC_DEADLINE = TSC + MB_PARAM1.
arm:
	cmpl $2, MB_PARAM0
	je 2f
	movl $X2APIC_TMICT, %ecx
	movl MB_PARAM1, %eax
	xorl %edx, %edx
	wrmsr
	ret
2:	rdtsc
	addl MB_PARAM1, %eax
	adcl $0, %edx
	movl $IA32_TSC_DEADLINE, %ecx
	wrmsr
	ret

isr:
	pushal
	incl MB_COUNT
	cmpl $1, MB_PARAM0		# periodic re-arms itself
	je 3f
	call arm
3:	movl $X2APIC_EOI, %ecx
	xorl %eax, %eax
	xorl %edx, %edx
	wrmsr
	movw $TICK_PORT, %dx
	outb %al, %dx
	popal
	iret

started: .asciz "lapic started\n"

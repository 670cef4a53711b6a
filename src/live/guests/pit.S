# kvm pit: program PIT channel 0 as a rate generator (mode 2) with the divisor in MB_PARAM0, take IRQ0
# through the in-kernel 8259A at vector 0x20, count each one in MB_COUNT, EOI it, and tell the VMM
# (TICK_PORT) so it can timestamp the delivery. Between interrupts the vCPU halts (in the kernel).
	.include "common.inc"
	.code16
	.globl _start
_start:
	SETUP
	movw $irq0, 0x20*4
	movw $0, 0x20*4+2
	PIC_INIT $0xfe
	movb $0x34, %al		# channel 0, lobyte/hibyte, mode 2, binary
	outb %al, $0x43
	movw MB_PARAM0, %ax
	outb %al, $0x40
	movb %ah, %al
	outb %al, $0x40
	movw $MARK_PORT, %dx	# the count is loaded: the host takes this exit's time as the PIT's start
	outb %al, %dx
	movw $started, %si
	PUTS
	sti
1:	hlt
	jmp 1b

irq0:
	pushw %ax
	pushw %dx
	incl MB_COUNT
	movb $0x20, %al		# non-specific EOI: KVM's ack notifier releases the next reinjected tick
	outb %al, $0x20
	movw $TICK_PORT, %dx
	outb %al, %dx
	popw %dx
	popw %ax
	iret

started: .asciz "pit started\n"

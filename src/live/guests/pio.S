# bench: MB_PARAM1 port writes to port MB_PARAM0 between two marks, then "pio done". With TICK_PORT the
# vCPU thread timestamps each write itself; any other port goes to the VMM's main thread and back.
	.include "common.inc"
	.code16
	.globl _start
_start:
	SETUP
	movl MB_PARAM1, %ecx
	movw $MARK_PORT, %dx
	outb %al, %dx
	movw MB_PARAM0, %dx
1:	outb %al, %dx
	decl %ecx
	jnz 1b
	movw $MARK_PORT, %dx
	outb %al, %dx
	movw $done, %si
	PUTS
	cli
	hlt

done: .asciz "pio done\n"

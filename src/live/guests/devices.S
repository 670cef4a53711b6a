# kvm devices: in flat 32-bit protected mode (set up by the VMM), enable the HPET (MMIO 0xfed00010,
# ENABLE_CNF) and read its main counter (0xfed000f0, low 32 bits) and the ACPI PM timer (port 0x608,
# 24 bits) back to back, MB_PARAM0 times, busy-waiting MB_PARAM1 PM-timer ticks between pairs. Pair i
# goes to MB_RESULT + 8·i (HPET, PM). Every access exits to the VMM's device models.
	.include "common.inc"
	.set HPET_CFG, 0xfed00010
	.set HPET_COUNTER, 0xfed000f0
	.set PM_TMR, 0x608
	.code32
	.globl _start
_start:
	cli
	movl $1, %eax
	movl %eax, HPET_CFG
	movl $MB_RESULT, %edi
	movl MB_PARAM0, %ecx
1:	movl HPET_COUNTER, %eax
	movl %eax, (%edi)
	movw $PM_TMR, %dx
	inl %dx, %eax
	movl %eax, 4(%edi)
	addl $8, %edi
	movl %eax, %ebx
2:	inl %dx, %eax			# wait MB_PARAM1 PM ticks (24-bit counter)
	subl %ebx, %eax
	andl $0xffffff, %eax
	cmpl MB_PARAM1, %eax
	jb 2b
	decl %ecx
	jnz 1b
	movl $1, MB_DONE
	movl $done, %esi
	PUTS
	hlt

done: .asciz "devices done\n"

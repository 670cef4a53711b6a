# kvm kvmclock: enable kvmclock itself (WRMSR 0x4b564d01 = 0x2000 | 1, as Linux's kvm_register_clock
# does), then MB_PARAM0 times: read its pvclock record with the version loop (version even and unchanged
# around the copy, as pvclock_clocksource_read does), RDTSC inside the loop, and store the copy and the
# TSC in MB_RESULT (version u32, tsc_timestamp u64, system_time u64, mul u32, shift s8, flags u8, then
# the TSC u64 at +32). After each read it writes SYNC_PORT, which the VMM answers only after taking
# KVM_GET_CLOCK, so the guest waits meanwhile; the host computes kvmclock time from the record and the
# guest's TSC (pvclock's 64x32 multiply is not worth writing in real mode).
	.include "common.inc"
	.set MSR_KVM_SYSTEM_TIME_NEW, 0x4b564d01
	.set PVCLOCK, 0x2000
	.set SYNC_PORT, 0x512
	.code16
	.globl _start
_start:
	SETUP
	movl $MSR_KVM_SYSTEM_TIME_NEW, %ecx
	movl $(PVCLOCK | 1), %eax
	xorl %edx, %edx
	wrmsr
	movw $MARK_PORT, %dx
	outb %al, %dx
	movl MB_PARAM0, %ecx
	movl %ecx, MB_LAST
again:
1:	movl PVCLOCK, %ebx		# version: odd = update in progress, 0 = not written yet
	testl $1, %ebx
	jnz 1b
	testl %ebx, %ebx
	jz 1b
	movl %ebx, MB_RESULT
	movl PVCLOCK+8, %eax		# tsc_timestamp
	movl %eax, MB_RESULT+4
	movl PVCLOCK+12, %eax
	movl %eax, MB_RESULT+8
	movl PVCLOCK+16, %eax		# system_time
	movl %eax, MB_RESULT+12
	movl PVCLOCK+20, %eax
	movl %eax, MB_RESULT+16
	movl PVCLOCK+24, %eax		# tsc_to_system_mul
	movl %eax, MB_RESULT+20
	movw PVCLOCK+28, %ax		# tsc_shift, flags
	movw %ax, MB_RESULT+24
	rdtsc
	movl %eax, MB_RESULT+32
	movl %edx, MB_RESULT+36
	cmpl PVCLOCK, %ebx		# the record changed while we copied it: again
	jne 1b
	incl MB_COUNT
	movw $SYNC_PORT, %dx
	outb %al, %dx
	decl MB_LAST
	jnz again
	movl $1, MB_DONE
	movw $done, %si
	PUTS
	cli
	hlt

done: .asciz "kvmclock done\n"

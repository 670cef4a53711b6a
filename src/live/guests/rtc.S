# kvm rtc: read the CMOS RTC the way Linux's mc146818_get_time does: wait while register A's UIP bit
# is set, read seconds..year and the century byte, and read again if seconds changed under us (the
# UIP handshake). Print the result over COM1 as "rtc YYYY-MM-DD HH:MM:SS" (BCD digits as stored), then
# read again until the seconds register moves on and print that, MB_PARAM0 lines in all; MARK_PORT as
# each line's reading is complete. (Waiting for UIP to rise instead would miss a whole second whenever
# the vCPU is not running during the 244 µs UIP window.), MB_PARAM0 times, then halt.
	.include "common.inc"
	.code16
	.globl _start
_start:
	SETUP
	movl MB_PARAM0, %ecx
	movl %ecx, MB_LAST
next:
	call read_rtc
	movw $MARK_PORT, %dx		# the host takes this exit's time: when the guest saw this second
	outb %al, %dx
	call print_rtc
	incl MB_COUNT
	decl MB_LAST
	jz done
	movb sec, %al			# poll (through the handshake) until the seconds register moves on
	movb %al, prev
1:	call read_rtc
	movb sec, %al
	cmpb prev, %al
	je 1b
	jmp next
done:
	movl $1, MB_DONE
	cli
	hlt

# CMOS register %al -> %al
cmos:
	outb %al, $0x70
	inb $0x71, %al
	ret

read_rtc:
1:	movb $0x0a, %al			# UIP set: an update is due within 244 µs, wait
	call cmos
	testb $0x80, %al
	jnz 1b
	movb $0x00, %al
	call cmos
	movb %al, sec
	movb $0x02, %al
	call cmos
	movb %al, min
	movb $0x04, %al
	call cmos
	movb %al, hour
	movb $0x07, %al
	call cmos
	movb %al, mday
	movb $0x08, %al
	call cmos
	movb %al, mon
	movb $0x09, %al
	call cmos
	movb %al, year
	movb $0x32, %al
	call cmos
	movb %al, century
	movb $0x00, %al			# seconds changed under us: read everything again
	call cmos
	cmpb sec, %al
	jne 1b
	ret

# two BCD digits of %al -> COM1
putbcd:
	movb %al, %ah
	shrb $4, %al
	addb $'0', %al
	movw $COM1, %dx
	outb %al, %dx
	movb %ah, %al
	andb $0x0f, %al
	addb $'0', %al
	outb %al, %dx
	ret

putc:
	movw $COM1, %dx
	outb %al, %dx
	ret

print_rtc:
	movw $prefix, %si
	PUTS
	movb century, %al
	call putbcd
	movb year, %al
	call putbcd
	movb $'-', %al
	call putc
	movb mon, %al
	call putbcd
	movb $'-', %al
	call putc
	movb mday, %al
	call putbcd
	movb $' ', %al
	call putc
	movb hour, %al
	call putbcd
	movb $':', %al
	call putc
	movb min, %al
	call putbcd
	movb $':', %al
	call putc
	movb sec, %al
	call putbcd
	movb $'\n', %al
	call putc
	ret

prefix: .asciz "rtc "
prev: .byte 0
sec: .byte 0
min: .byte 0
hour: .byte 0
mday: .byte 0
mon: .byte 0
year: .byte 0
century: .byte 0

// The guest's /init: a busybox shell script the lab writes into the initramfs. It mounts the pseudo
// filesystems, silences console printk (so the serial port carries only protocol lines), says "@tv ready"
// and then serves commands read from ttyS0, one per line, answering in the line protocol of protocol.ts.
//
// Clock samples come from two readers busybox has (its `date` has no %N):
//  - /proc/timer_list: "now at <ns> nsecs" is ktime_get() (CLOCK_MONOTONIC, ns), and each hrtimer clock
//    base lists its .offset from it: base 1 ktime_get_real (offs_real), base 2 ktime_get_boottime
//    (offs_boot) — kernel/time/timer_list.c, kernel/time/hrtimer.c. One read of one file gives all three
//    clocks at the same instant, with ns precision.
//  - busybox `adjtimex`: the adjtimex(2) status word, offset, frequency and the REALTIME at µs.

export interface InitOptions {
  /** Kernel modules (paths inside the image) to insmod at start, e.g. the e1000 NIC driver. */
  modules: readonly string[];
}

export function initScript(opts: InitOptions): string {
  const insmods = opts.modules.map((m) => `insmod ${m} 2>/dev/null`).join('\n');
  return `#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mkdir -p /run /var/run /var/lib/chrony /tmp /etc
dmesg -n 1
${insmods}
T=/dev/ttyS0
stty -F $T -echo 2>/dev/null
TR=/sys/kernel/tracing

clock() {
  echo "@tv begin clock $1"
  # shell builtins only until the timer_list lines are out: no fork/exec between the request and the read
  n=0
  while read -r l && [ $n -lt 40 ]; do
    n=$((n+1))
    case "$l" in "now at"*|*get_time*|*.offset*) echo "$l" ;; esac
  done < /proc/timer_list
  adjtimex
  cat /proc/uptime
  echo "@tv end clock $1"
}

sysinfo() {
  echo "@tv begin sys"
  # sysfs texts exactly: their newlines become '|' (no clocksource or clockevent name has one) on the one-line protocol
  echo "available_clocksource=$(tr '\\n' '|' < /sys/devices/system/clocksource/clocksource0/available_clocksource)"
  echo "current_clocksource=$(tr '\\n' '|' < /sys/devices/system/clocksource/clocksource0/current_clocksource)"
  echo "clockevent_device=$(tr '\\n' '|' < /sys/devices/system/clockevents/clockevent0/current_device)"
  echo "kernel=$(uname -r)"
  echo "@tv end sys"
}

trace_start() {
  echo 0 > $TR/tracing_on
  echo nop > $TR/current_tracer
  echo > $TR/trace
  echo "$*" > $TR/set_graph_function
  echo 6 > $TR/max_graph_depth
  echo function_graph > $TR/current_tracer
  echo funcgraph-abstime > $TR/trace_options
  echo 1 > $TR/tracing_on
  echo "@tv ok trace-start"
}

trace_dump() {
  echo 0 > $TR/tracing_on
  echo "@tv begin trace $1"
  cat $TR/trace
  echo "@tv end trace $1"
}

net_up() {
  ip link set lo up
  ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2
  echo "@tv ok net-up $?"
}

chrony_start() {
  # $1 host, $2 port. makestep 0.1 -1: step whenever the offset exceeds 0.1 s (Debian ships "makestep 1 3").
  cat > /etc/chrony.conf <<EOF
server $1 port $2 iburst minpoll -1 maxpoll -1
makestep 0.1 -1
pidfile /run/chronyd.pid
cmdport 0
bindcmdaddress /
logdir /run/chrony
log measurements statistics tracking selection
EOF
  mkdir -p /run/chrony
  # The four logs are hard links to one FIFO read onto the serial port, so their lines keep chronyd's
  # order and the host stamps each as chronyd writes it (logging.c LOG_FileWrite flushes each line; a
  # hard link passes UTI_OpenFile's O_NOFOLLOW). A shell read loop, not sed: busybox sed holds a line
  # back until the next one arrives (to know the last line), so each line would come one line late.
  rm -f /run/chrony/*.log /run/chrony/logs.fifo; mkfifo /run/chrony/logs.fifo
  for f in measurements statistics tracking selection; do ln /run/chrony/logs.fifo /run/chrony/$f.log; done
  (while read -r l; do echo "@tv chronylog $l"; done < /run/chrony/logs.fifo > $T) &
  (chronyd -d -u root -F 0 -f /etc/chrony.conf 2>&1 | while read -r l; do echo "@tv chrony $l"; done > $T) &
  echo "@tv ok chrony-start"
}

agent_start() {
  (qemu-ga -m isa-serial -p /dev/ttyS1 -t /run 2>&1 | sed 's/^/@tv qga /' > $T) &
  echo "@tv ok agent-start"
}

exec > $T 2>&1 < $T
sysinfo
echo "@tv ready"
while read -r cmd rest; do
  case "$cmd" in
    clock) clock $rest ;;
    sys) sysinfo ;;
    dmesg) echo "@tv begin dmesg $rest"; dmesg; echo "@tv end dmesg $rest" ;;
    trace-start) trace_start $rest ;;
    trace-dump) trace_dump $rest ;;
    net-up) net_up ;;
    chrony-start) chrony_start $rest ;;
    agent-start) agent_start ;;
    hwclock) echo "@tv begin hwclock $rest"; hwclock -r -u; echo "@tv end hwclock $rest" ;;
    exec) set -- $rest; id=$1; shift; echo "@tv begin exec $id"; "$@" 2>&1; echo "@tv end exec $id" ;;
    poweroff) poweroff -f ;;
    '') ;;
    *) echo "@tv error unknown command $cmd" ;;
  esac
done
poweroff -f
`;
}

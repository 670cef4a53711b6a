// The guest's VMGenID driver, drivers/virt/vmgenid.c: at probe (vmgenid_add) it copies the 16-byte
// identifier into this_id and feeds it to add_device_randomness; on the device's ACPI notification
// (vmgenid_notify) it copies the buffer again and, only when it differs from this_id, calls
// add_vmfork_randomness — which reseeds the CRNG and prints "random: crng reseeded due to virtual
// machine fork" (drivers/char/random.c, pr_fmt "random: "; the message needs crng_ready(), which every
// booted guest here has) — and sends the NEW_VMGENID=1 uevent. A notification with an unchanged
// identifier does nothing.

/** The line add_vmfork_randomness prints (Firecracker's tests count it per restore). */
export const VMFORK_RESEED_LINE = 'random: crng reseeded due to virtual machine fork';

export class VmgenidDriver {
  private thisId: Uint8Array;
  /** Times add_vmfork_randomness ran (new generations the guest saw). */
  reseeds = 0;

  /** vmgenid_add: `read` returns the buffer's 16 bytes (the memremapped ADDR). */
  constructor(
    private readonly read: () => Uint8Array,
    private readonly printk: (line: string) => void,
  ) {
    this.thisId = read().slice();
  }

  /** vmgenid_notify: true when the guest saw a new generation. */
  notify(): boolean {
    const old = this.thisId;
    this.thisId = this.read().slice();
    if (old.every((b, i) => b === this.thisId[i])) return false;
    this.reseeds++;
    this.printk(VMFORK_RESEED_LINE);
    return true;
  }
}

// The VM Generation ID device (Microsoft's VMGenID spec: a 128-bit identifier in guest memory, an ACPI
// notify when it changes) as the VMMs that have one keep it:
//   QEMU (hw/acpi/vmgenid.c, docs/specs/vmgenid.rst): `-device vmgenid,guid=auto|<uuid>`. The GUID is a
//     property of the QEMU *process*: vmgenid_set_guid draws a random v4 UUID (qemu_uuid_generate) for
//     `auto` when the device is created, parses a given one otherwise. The vmstate carries only the
//     guest address (vmgenid_addr_le), not the GUID: vmgenid_post_load writes the loading process's GUID
//     into guest memory (the three first UUID fields byte-swapped to little-endian) and raises GPE E05
//     (Notify \_SB.VGEN 0x80) on every loadvm and incoming migration. So with guid=auto a restore in a new
//     QEMU *and* a live migration (the destination is a new process) give the guest a new generation;
//     with a fixed GUID the guest is notified but reads the same value. stop/cont touches nothing.
//   Firecracker (src/vmm/src/devices/acpi/vmgenid.rs, device_manager restore): every microVM has one;
//     VmGenId::from_parts writes 16 fresh random bytes (u128 little-endian) at boot and again when the
//     device is rebuilt on snapshot restore, then notify_guest() interrupts the guest. Pause does nothing.
// Cloud Hypervisor and kvmtool have no VMGenID device. The guest side is src/guest/vmgenid.ts.
import type { GuestMemory } from '../hypervisor/index.ts';

export type VmgenidFlavor = 'qemu' | 'firecracker';

/** Which VMGenID the profile's VMM has, or null. */
export function vmgenidFlavor(profile: string): VmgenidFlavor | null {
  if (profile === 'qemu-kvm' || profile === 'qemu-kvm-noinvtsc' || profile === 'qemu-tcg') return 'qemu';
  if (profile === 'firecracker' || profile === 'firecracker-pvm') return 'firecracker';
  return null;
}

/** The VMGenID buffer is 16 bytes (VMGENID_SIZE in drivers/virt/vmgenid.c, VMGENID_MEM_SIZE in Firecracker). */
export const VMGENID_SIZE = 16;

export interface VmgenidOptions {
  /** QEMU's guid property: 'auto', or a fixed UUID ("324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87", big-endian text). */
  guid: 'auto' | string;
  /** 32 random bits per call: the VMM's random source (QEMU's g_random, Firecracker's aws-lc rand), seeded. */
  random: () => number;
}

/** A UUID's text as QEMU parses it (qemu_uuid_parse): 16 bytes, big-endian fields. */
export function parseUuid(text: string): Uint8Array | null {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(text)) return null;
  const hex = text.replaceAll('-', '');
  return Uint8Array.from({ length: 16 }, (_, i) => Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16));
}

/** The bytes a guest reads, as GUID text (Microsoft's mixed-endian GUID: three first fields little-endian). */
export function guidText(le: Uint8Array): string {
  const h = (i: number) => le[i]!.toString(16).padStart(2, '0');
  const r = (...ix: number[]) => ix.map(h).join('');
  return `${r(3, 2, 1, 0)}-${r(5, 4)}-${r(7, 6)}-${r(8, 9)}-${r(10, 11, 12, 13, 14, 15)}`;
}

export class VmgenidDevice {
  /** The identifier the VMM holds now, as the bytes it writes into guest memory. */
  private id: Uint8Array;
  /** How many times the VMM wrote a new identifier after boot. */
  generations = 0;

  constructor(
    private readonly memory: GuestMemory,
    readonly gpa: bigint,
    readonly flavor: VmgenidFlavor,
    private readonly opts: VmgenidOptions,
  ) {
    this.id = this.drawId();
    this.write(); // QEMU: the firmware downloads the etc/vmgenid_guid blob; Firecracker: from_parts at boot
  }

  /** What the guest reads at the buffer. */
  read(): Uint8Array {
    return this.memory.read(this.gpa, VMGENID_SIZE);
  }

  /**
   * The VM runs again in a new VMM process after a snapshot restore or on a live migration's destination:
   * QEMU creates the device (a new GUID with guid=auto) and vmgenid_post_load writes it and notifies;
   * Firecracker rebuilds it from its saved address with new random bytes and calls notify_guest().
   * Returns true: both VMMs always send the ACPI notification (the guest decides whether it is new).
   */
  load(): boolean {
    const next = this.drawId();
    if (!equalBytes(next, this.id)) this.generations++;
    this.id = next;
    this.write();
    return true;
  }

  private drawId(): Uint8Array {
    if (this.flavor === 'firecracker') return this.randomBytes(); // u128::from_le_bytes(random), written to_le_bytes
    const uuid = this.opts.guid === 'auto' ? this.randomV4Uuid() : parseUuid(this.opts.guid);
    if (!uuid) throw new RangeError(`vmgenid guid: not a UUID: ${this.opts.guid}`);
    // qemu_uuid_bswap before cpu_physical_memory_write: the guest expects little-endian fields
    const le = uuid.slice();
    le.set([uuid[3]!, uuid[2]!, uuid[1]!, uuid[0]!, uuid[5]!, uuid[4]!, uuid[7]!, uuid[6]!], 0);
    return le;
  }

  private randomBytes(): Uint8Array {
    const b = new Uint8Array(VMGENID_SIZE);
    const v = new DataView(b.buffer);
    for (let i = 0; i < VMGENID_SIZE; i += 4) v.setUint32(i, this.opts.random() >>> 0, true);
    return b;
  }

  /** qemu_uuid_generate (util/uuid.c): random bytes with the version 4 and RFC 4122 variant bits. */
  private randomV4Uuid(): Uint8Array {
    const b = this.randomBytes();
    b[6] = (b[6]! & 0x0f) | 0x40;
    b[8] = (b[8]! & 0x3f) | 0x80;
    return b;
  }

  private write(): void {
    this.memory.write(this.gpa, this.id);
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

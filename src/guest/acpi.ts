// ACPI table lines the guest prints while it finds its tables (drivers/acpi/tables.c, ACPICA tbprint.c)
// and reserves their memory (drivers/acpi/tables.c acpi_table_init_complete → acpi_reserve_initial_tables).
import type { AcpiTableHeader } from './platform.ts';

const hex = (v: number, w: number): string => v.toString(16).toUpperCase().padStart(w, '0');

/**
 * acpi_tb_print_table_header: "%-4.4s 0x%8.8X%8.8X %06X (v%.2d %-6.6s %-8.8s %08X %-4.4s %08X)" behind
 * the "ACPI: " prefix, then the reservation line with the table's first and last byte.
 */
export function acpiTableLines(signature: string, t: AcpiTableHeader): string[] {
  const addr = BigInt(t.address);
  return [
    `ACPI: ${signature.padEnd(4).slice(0, 4)} 0x${hex(Number(addr >> 32n), 8)}${hex(Number(addr & 0xffff_ffffn), 8)} ${hex(t.length, 6)} (v${String(t.revision).padStart(2, '0')} ${t.oemId.padEnd(6).slice(0, 6)} ${t.oemTableId.padEnd(8).slice(0, 8)} ${hex(t.oemRevision, 8)} ${t.creatorId.padEnd(4).slice(0, 4)} ${hex(t.creatorRevision, 8)})`,
    `ACPI: Reserving ${signature} table memory at [mem 0x${t.address.toString(16)}-0x${(t.address + t.length - 1).toString(16)}]`,
  ];
}

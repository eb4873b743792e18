/**
 * The vmdesc JSON that QEMU 7.2 appends after EOF (QEMU_VM_VMDESCRIPTION), as plain types.
 * Key order matters for byte-exact reproduction; see vmdesc.ts for the writer.
 *
 * ```
 * {"page_size": 4096, "devices": [ VmdescDevice, ... ]}
 * ```
 */
export interface Vmdesc {
  page_size: number;
  devices: VmdescDevice[];
}

/** One FULL section. VMSD devices carry vmsd_name/version; old-style handlers carry `size`. */
export interface VmdescDevice {
  /** Section idstr. */
  name: string;
  instance_id: number;
  vmsd_name?: string;
  version?: number;
  /** Old-style (non-VMSD) handlers only: bytes written. */
  size?: number;
  fields: VmdescField[];
  subsections?: VmdescVmsd[];
}

/** A nested VMSD description: a struct's `struct` value or a subsection entry. */
export interface VmdescVmsd {
  vmsd_name: string;
  version: number;
  fields: VmdescField[];
  subsections?: VmdescVmsd[];
}

export interface VmdescField {
  name: string;
  /** Compressible array: this entry describes element 0 of `array_len` equal elements. */
  array_len?: number;
  /** Non-compressible array: this entry is element `index`. */
  index?: number;
  /** VMStateInfo name (`uint32`, `buffer`, `int32 equal`, …) or `struct` / `vstruct`. */
  type: string;
  struct?: VmdescVmsd;
  /** For tmp/vstruct/qtailq/gtree/qlist: nested description written inline (QEMU quirk). */
  vmsd_name?: string;
  version?: number;
  fields?: VmdescField[];
  subsections?: VmdescVmsd[];
  /** Bytes written for one element (including a struct's own subsections). */
  size: number;
}

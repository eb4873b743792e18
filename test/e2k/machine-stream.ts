/**
 * Saves a stopped E2K machine as a QEMU migration stream (header, configuration, `ram` START +
 * END with every page, FULL device sections in the machine's save order, EOF, vmdesc) with the migration
 * package's StreamWriter, and loads such a stream into an incoming machine with its StreamReader.
 * This is what a non-live migration of the machine is; the precopy issue makes it live.
 */
import { createHash } from 'node:crypto';
import { type DeviceSection, describeMachine, type E2kMachine } from '@e2k-migrate/e2k-cpu';
import {
  ByteSource,
  LoaderRegistry,
  RAM_SECTION_VERSION,
  RamSectionLoader,
  RamState,
  type SectionContext,
  StreamReader,
  StreamWriter,
} from '@e2k-migrate/migration';
import {
  ByteWriter,
  decodeVmsd,
  describeDevice,
  encodeVmsd,
  formatVmdesc,
  type VmdescDevice,
} from '@e2k-migrate/vmstate';

export async function saveMachineStream(m: E2kMachine): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const w = new StreamWriter((c) => {
    chunks.push(c);
  });
  const d = describeMachine(m);
  w.header().configuration({ machine: 'e2k', subsections: [] });
  let sectionId = 0;
  const ramId = sectionId++;
  const block = d.ramBlocks[0];
  if (!block || d.ramBlocks.length !== 1) throw new Error('expected one RAM block');
  w.sectionHeader({ kind: 'START', sectionId: ramId, idstr: 'ram', instanceId: 0, versionId: RAM_SECTION_VERSION });
  w.ramMemSize({ total: block.size, blocks: [{ name: block.idstr, usedLength: block.size }] })
    .ramEos()
    .footer(ramId);
  w.sectionHeader({ kind: 'END', sectionId: ramId });
  const page = new Uint8Array(d.targetPageSize);
  for (let off = 0; off < block.size; off += page.length) {
    block.memory.readBytes(off, page);
    const name = off === 0 ? block.idstr : undefined;
    if (page.every((b) => b === 0)) w.ramZero(off, name);
    else w.ramPage(off, name, page);
    await w.maybeFlush();
  }
  w.ramEos().footer(ramId);
  const devices: VmdescDevice[] = [];
  for (const s of d.sections as DeviceSection<unknown>[]) {
    const id = sectionId++;
    const state = s.save();
    w.sectionHeader({
      kind: 'FULL',
      sectionId: id,
      idstr: s.idstr,
      instanceId: s.instanceId,
      versionId: s.vmsd.version,
    });
    w.raw(encodeVmsd(s.vmsd, state, new ByteWriter()).written()).footer(id);
    devices.push(describeDevice(s.idstr, s.instanceId, s.vmsd, state));
  }
  w.eof().vmdesc(new TextEncoder().encode(formatVmdesc({ page_size: d.targetPageSize, devices })));
  await w.flush();
  return Buffer.concat(chunks);
}

/** Loads a stream written by {@link saveMachineStream} into an incoming machine. */
export async function loadMachineStream(m: E2kMachine, stream: Uint8Array): Promise<void> {
  const d = describeMachine(m);
  const block = d.ramBlocks[0];
  if (!block) throw new Error('expected one RAM block');
  const registry = new LoaderRegistry();
  registry.register(
    'ram',
    new RamSectionLoader(new RamState(), {
      zero: (b, offset, fill) => {
        if (b.name !== block.idstr) throw new Error(`unknown block ${b.name}`);
        block.memory.writeBytes(offset, new Uint8Array(d.targetPageSize).fill(fill));
      },
      page: (b, offset, data) => {
        if (b.name !== block.idstr) throw new Error(`unknown block ${b.name}`);
        block.memory.writeBytes(offset, data);
      },
    }),
  );
  for (const s of d.sections as DeviceSection<unknown>[]) {
    registry.register(
      s.idstr,
      {
        load: async (ctx: SectionContext) => {
          const state = await ctx.source.parse(
            (r) => decodeVmsd(s.vmsd, r, ctx.section.versionId, s.loadTarget(), { more: true }),
            `${s.idstr} section body`,
            1 << 20,
          );
          s.load(state);
          return undefined;
        },
      },
      s.instanceId,
    );
  }
  await new StreamReader(new ByteSource(stream), { resolver: registry }).read();
  d.afterLoad();
}

/** sha256 of all of guest RAM. */
export function ramSha256(m: E2kMachine): string {
  const h = createHash('sha256');
  for (const v of m.ram.views()) h.update(v);
  return h.digest('hex');
}

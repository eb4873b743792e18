import {
  type ByteSource,
  FooterScanLoader,
  LoaderRegistry,
  type MemSizeList,
  RAM_SAVE_FLAG_CONTINUE,
  type RamBlockInfo,
  type RamRecordInfo,
  RamSectionLoader,
  RamState,
  type SectionInfo,
  StreamReader,
  StreamState,
  type StreamVisitor,
  StreamWriter,
} from '@e2k-migrate/migration';

/**
 * Re-writes a real stream keeping every record except most RAM pages: at most `keep` page
 * records (PAGE/ZERO/XBZRLE/COMPRESS) per `ram` section. Block names are re-emitted where a
 * dropped record would have carried them, so the result is a valid stream with the original's
 * structure (commands, package, device sections, vmdesc) at a fraction of the size — fuzz input.
 */
export async function shrinkStream(src: ByteSource, keep: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const stack: { outer: StreamWriter; chunks: Uint8Array[] }[] = [];
  let w = new StreamWriter((c) => {
    chunks.push(c);
  });
  let kept = 0;
  let last: string | undefined;
  const name = (b: RamBlockInfo, info: RamRecordInfo): string | undefined => {
    const n = info.flags & RAM_SAVE_FLAG_CONTINUE && last === b.name ? undefined : b.name;
    last = b.name;
    return n;
  };
  const take = () => kept++ < keep;
  const visitor: StreamVisitor = {
    header: () => void w.header(),
    configuration: (c) => void w.configuration(c),
    sectionBegin: (s: SectionInfo) => {
      kept = 0;
      if (s.kind === 'START' || s.kind === 'FULL') {
        w.sectionHeader({
          kind: s.kind,
          sectionId: s.sectionId,
          idstr: s.idstr,
          instanceId: s.instanceId,
          versionId: s.versionId,
        });
      } else w.sectionHeader({ kind: s.kind, sectionId: s.sectionId });
    },
    sectionEnd: (s) => void w.footer(s.sectionId),
    command: (c) => {
      if (c.cmd !== 'PACKAGED') {
        w.command(c);
        return;
      }
      const inner: Uint8Array[] = [];
      stack.push({ outer: w, chunks: inner });
      w = new StreamWriter((c2) => {
        inner.push(c2);
      });
    },
    packageEnd: async () => {
      await w.flush();
      const top = stack.pop();
      if (!top) return;
      w = top.outer;
      w.packaged(Buffer.concat(top.chunks));
    },
    eof: () => void w.eof(),
    vmdesc: (json) => void w.vmdesc(json),
  };
  const registry = new LoaderRegistry(new FooterScanLoader((_s, body) => void w.raw(body)));
  registry.register(
    'ram',
    new RamSectionLoader(new RamState(), {
      memSize: (list: MemSizeList) => void w.ramMemSize(list),
      zero: (b, o, fill, info) => void (take() && w.ramZero(o, name(b, info), fill)),
      page: (b, o, data, info) => void (take() && w.ramPage(o, name(b, info), data)),
      xbzrle: (b, o, delta, info) => void (take() && w.ramXbzrle(o, name(b, info), delta)),
      compressed: (b, o, z, info) => void (take() && w.ramCompressed(o, name(b, info), z)),
      eos: (info) => void w.ramEos(info.flags),
    }),
  );
  await new StreamReader(src, { resolver: registry, visitor, state: new StreamState() }).read();
  await w.flush();
  return Buffer.concat(chunks);
}

import type { SectionKind } from '../wire/constants.js';
import type { ByteSource } from './byte-source.js';
import type { StreamState } from './stream-state.js';

/** A section as the reader found it: header fields plus where it sits. */
export interface SectionInfo {
  kind: SectionKind;
  sectionId: number;
  /** For PART/END: taken from the START/FULL that introduced the section id. */
  idstr: string;
  instanceId: number;
  versionId: number;
  /** Absolute offset of the type byte. */
  offset: number;
  /** Absolute offset of the first body byte. */
  bodyOffset: number;
  /** 0 = main stream, 1 = inside a PACKAGED command. */
  depth: number;
  /** `idstr (section_id)`, the key QEMU's analyze script uses. */
  label: string;
}

/** What a loader tells the reader about the body it consumed. */
export interface SectionLoadResult {
  /** The body length was found by scanning for the footer (spec §2.9), not by decoding it. */
  lengthGuessed?: boolean;
}

/** Everything a loader needs to consume one section body (and nothing after it). */
export interface SectionContext {
  readonly source: ByteSource;
  readonly section: SectionInfo;
  readonly state: StreamState;
}

/**
 * Loads one section body. Bodies carry no length: a loader must consume exactly the body and
 * leave the source at the section footer. The `ram` loader is native; device loaders decode
 * VMState (a schema, or a vmdesc) or scan for the footer.
 */
export interface SectionLoader {
  load(ctx: SectionContext): Promise<SectionLoadResult | undefined> | SectionLoadResult | undefined;
}

/** Finds the loader for a START/FULL section (by idstr + instance id, as QEMU does). */
export interface LoaderResolver {
  resolve(section: SectionInfo): SectionLoader | undefined;
}

/** A resolver over a table keyed by `idstr` or `idstr:instance`, with an optional fallback. */
export class LoaderRegistry implements LoaderResolver {
  private readonly byKey = new Map<string, SectionLoader>();
  fallback: SectionLoader | undefined;

  constructor(fallback?: SectionLoader) {
    this.fallback = fallback;
  }

  /** Registers a loader for every instance of `idstr`, or only for `instanceId`. */
  register(idstr: string, loader: SectionLoader, instanceId?: number): this {
    this.byKey.set(instanceId === undefined ? idstr : `${idstr}\u0000${instanceId}`, loader);
    return this;
  }

  resolve(section: SectionInfo): SectionLoader | undefined {
    return (
      this.byKey.get(`${section.idstr}\u0000${section.instanceId}`) ?? this.byKey.get(section.idstr) ?? this.fallback
    );
  }
}

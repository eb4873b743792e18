import type { Configuration } from '../wire/configuration.js';
import { DEFAULT_TARGET_PAGE_SIZE } from '../wire/constants.js';

/**
 * Parse-affecting facts learned while reading a stream, shared by the reader and the loaders:
 * the target page size (RAM flag mask), capabilities announced in the configuration record, and
 * the POSTCOPY_ADVISE page-size summary (which decides whether MEM_SIZE entries carry a page size).
 */
export class StreamState {
  /** Target page size: flags are `word & (pageSize - 1)`. */
  pageSize: number;
  /** The page size was given explicitly (option or vmdesc) rather than defaulted. */
  pageSizeKnown: boolean;
  configuration: Configuration | undefined;
  /** `x-ignore-shared` is in the configuration capabilities: MEM_SIZE entries carry mr_addr. */
  ignoreShared = false;
  /** From POSTCOPY_ADVISE (16-byte form). */
  postcopyPageSizeSummary: number | undefined;
  /** POSTCOPY_LISTEN seen: the stream is in postcopy and will carry no vmdesc. */
  postcopyListening = false;
  /** Section footers are expected after every section body (property send-section-footer). */
  sectionFooters = true;
  /** Section ids seen in START/FULL headers (footer-scan validation uses them). */
  readonly knownSectionIds = new Set<number>();

  constructor(pageSize?: number) {
    this.pageSize = pageSize ?? DEFAULT_TARGET_PAGE_SIZE;
    this.pageSizeKnown = pageSize !== undefined;
  }

  /** Applies the configuration record: target-page-bits and validated capabilities. */
  applyConfiguration(cfg: Configuration): void {
    this.configuration = cfg;
    for (const sub of cfg.subsections) {
      if (sub.name === 'configuration/target-page-bits' && !this.pageSizeKnown) this.pageSize = 2 ** sub.targetPageBits;
      if (sub.name === 'configuration/capabilities') this.ignoreShared = sub.capabilities.includes('x-ignore-shared');
    }
  }
}

import { fixturePath } from '@e2k-migrate/test-support';

/** One QEMU 7.2 fixture migration as the analyzer reads it. */
export interface FixtureCase {
  name: string;
  /** Main stream (fixture-relative, without .gz). */
  main: string;
  multifd?: string[];
  preempt?: string;
  returnPath?: string;
  /** analyze-migration.py -d state output, where the script worked. */
  analyzeJson?: string;
  /** Reference RAM of the main block (pmemsave on the stopped source). */
  ram: string;
  mainBlock: string;
  summaryJson?: string;
  stats: string;
  /** An exec: file (not a socket capture). */
  file: boolean;
}

export const CASES: FixtureCase[] = [
  {
    name: 'idle-pc-64M',
    main: 'idle-pc-64M/idle-pc-64M.mig',
    analyzeJson: 'idle-pc-64M/idle-pc-64M.analyze.json',
    ram: 'idle-pc-64M/idle-pc-64M.ram',
    mainBlock: 'pc.ram',
    summaryJson: 'idle-pc-64M/idle-pc-64M.summary.json',
    stats: 'idle-pc-64M/idle-pc-64M.stats.json',
    file: true,
  },
  {
    name: 'bootblock-stopped',
    main: 'bootblock-stopped/bootblock-stopped.mig',
    analyzeJson: 'bootblock-stopped/bootblock-stopped.analyze.json',
    ram: 'bootblock-stopped/bootblock-stopped.ram',
    mainBlock: 'pc.ram',
    summaryJson: 'bootblock-stopped/bootblock-stopped.summary.json',
    stats: 'bootblock-stopped/bootblock-stopped.stats.json',
    file: true,
  },
  {
    name: 'bootblock-live',
    main: 'bootblock-live/bootblock-live.mig',
    analyzeJson: 'bootblock-live/bootblock-live.analyze.json',
    ram: 'bootblock-live/bootblock-live.ram',
    mainBlock: 'pc.ram',
    summaryJson: 'bootblock-live/bootblock-live.summary.json',
    stats: 'bootblock-live/bootblock-live.stats.json',
    file: true,
  },
  {
    name: 'bootblock-xbzrle',
    main: 'bootblock-xbzrle/bootblock-xbzrle.mig',
    ram: 'bootblock-xbzrle/bootblock-xbzrle.ram',
    mainBlock: 'pc.ram',
    summaryJson: 'bootblock-xbzrle/bootblock-xbzrle.summary.json',
    stats: 'bootblock-xbzrle/bootblock-xbzrle.stats.json',
    file: true,
  },
  {
    name: 'multifd',
    main: 'multifd/conn0.src2dst.bin',
    // Deliberately not in channel-id order: the init packet numbers the channel.
    multifd: ['multifd/conn2.src2dst.bin', 'multifd/conn1.src2dst.bin'],
    returnPath: 'multifd/conn0.dst2src.bin',
    analyzeJson: 'multifd/multifd.conn-main.analyze.json',
    ram: 'multifd/multifd.ram',
    mainBlock: 'pc.ram',
    summaryJson: 'multifd/multifd.summary.json',
    stats: 'multifd/multifd.stats.json',
    file: false,
  },
  {
    name: 'postcopy',
    main: 'postcopy/conn0.src2dst.bin',
    returnPath: 'postcopy/conn0.dst2src.bin',
    ram: 'postcopy/postcopy.ram',
    mainBlock: 'pc.ram',
    summaryJson: 'postcopy/postcopy.summary.json',
    stats: 'postcopy/postcopy.stats.json',
    file: false,
  },
  {
    name: 'postcopy-preempt',
    main: 'postcopy-preempt/conn0.src2dst.bin',
    preempt: 'postcopy-preempt/conn1.src2dst.bin',
    returnPath: 'postcopy-preempt/conn0.dst2src.bin',
    ram: 'postcopy-preempt/postcopy-preempt.ram',
    mainBlock: 'pc.ram',
    summaryJson: 'postcopy-preempt/postcopy-preempt.summary.json',
    stats: 'postcopy-preempt/postcopy-preempt.stats.json',
    file: false,
  },
  {
    name: 'none-32M',
    main: 'none-32M/none-32M.mig',
    analyzeJson: 'none-32M/none-32M.analyze.json',
    ram: 'none-32M/none-32M.ram',
    mainBlock: 'ram',
    summaryJson: 'none-32M/none-32M.summary.json',
    stats: 'none-32M/none-32M.stats.json',
    file: true,
  },
  {
    name: 'none-32M-pattern',
    main: 'none-32M-pattern/none-32M-pattern.mig',
    analyzeJson: 'none-32M-pattern/none-32M-pattern.analyze.json',
    ram: 'none-32M-pattern/none-32M-pattern.ram',
    mainBlock: 'ram',
    summaryJson: 'none-32M-pattern/none-32M-pattern.summary.json',
    stats: 'none-32M-pattern/none-32M-pattern.stats.json',
    file: true,
  },
  // Written by the fixture generator's own writer, accepted by QEMU; RAM equals none-32M-pattern's.
  {
    name: 'synth-none-32M-minimal',
    main: 'synth-none-32M-minimal/synth-none-32M-minimal.mig',
    ram: 'none-32M-pattern/none-32M-pattern.ram',
    mainBlock: 'ram',
    stats: '',
    file: true,
  },
];

export const path = (rel: string): string => fixturePath(rel);

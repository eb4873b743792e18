import { type DoctorReport, doctorReport } from '@e2k-migrate/native';
import { type Command, type CommandContext, UsageError } from '../command.js';

/** Human-readable lines of a doctor report. */
export function formatDoctor(r: DoctorReport): string {
  const yn = (b: boolean | null): string => (b === null ? 'unknown (needs the native backend)' : b ? 'yes' : 'no');
  const hp = r.hugepages;
  const lines = [
    `backend           ${r.backend.name} — ${r.backend.reason} (E2K_NATIVE=${r.backend.requested})`,
    ...(r.backend.build
      ? [
          `addon build       ${r.backend.build.ok ? 'ok' : 'failed'}: ${r.backend.build.reason}${r.backend.build.at ? ` (${r.backend.build.at})` : ''}`,
        ]
      : []),
    `kernel            ${r.kernel.release} (${r.kernel.version})`,
    `userfaultfd       syscall: ${r.userfaultfd.syscall}; /dev/userfaultfd: ${r.userfaultfd.device}${r.userfaultfd.devicePresent ? '' : ' (absent)'}; vm.unprivileged_userfaultfd=${r.userfaultfd.unprivileged ?? '?'}`,
    `uffd features     ${r.userfaultfd.features.length ? r.userfaultfd.features.join(' ') : 'none'}`,
    `WP_ASYNC          ${yn(r.wpAsync)}`,
    `PAGEMAP_SCAN      ${yn(r.pagemapScan)}`,
    `dirty tracking    ${r.dirtyTracking}${r.dirtyTracking === 'kernel' ? ' (UFFD_FEATURE_WP_ASYNC + PAGEMAP_SCAN)' : ' (software bitmap marked by the memory API)'}`,
    `demand paging     ${r.demandPaging}${r.demandPaging === 'uffd' ? ' (userfaultfd MISSING)' : ' (cooperative: Atomics.wait on a received bitmap)'}`,
    `huge pages        ${hp.pageSizeKiB ?? '?'} KiB: total ${hp.total ?? '?'}, free ${hp.free ?? '?'}, reserved ${hp.reserved ?? '?'}, surplus ${hp.surplus ?? '?'}; nr_hugepages=${hp.nrHugepages ?? '?'} (${hp.reservable ? 'writable: can reserve more' : 'not writable here'})`,
    `hugetlb memfd     ${hp.hugetlbMemfd}${hp.hugetlbMemfd === 'ENOMEM' ? ' (no free huge page: raise /proc/sys/vm/nr_hugepages)' : ''}`,
    `hugetlbfs         ${r.hugetlbfs.mounted ? `mounted at ${r.hugetlbfs.mountpoints.join(', ')}` : 'not mounted (not needed: regions use hugetlb memfds)'}`,
  ];
  return `${lines.join('\n')}\n`;
}

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'Show the memory backend in use and the kernel features migration relies on',
  usage: '[--json]',
  description: `
Reports which backend @e2k-migrate/native is using — the C++ addon ("native") or the TypeScript
fallback — and why (E2K_NATIVE=0|1|auto, the install-time build result), then probes the kernel:
its version; userfaultfd through the syscall and through /dev/userfaultfd, with the features the
kernel offers; UFFD_FEATURE_WP_ASYNC and the PAGEMAP_SCAN ioctl (kernel dirty tracking); 2 MiB
huge pages (free, reserved, whether nr_hugepages can be raised) and whether a hugetlb memfd can
be created; hugetlbfs mounts. The probes create and remove a few scratch mappings.

Examples:
  e2k-migrate doctor                   # human-readable report
  e2k-migrate doctor --json | jq .backend
  E2K_NATIVE=0 e2k-migrate doctor      # what the fallback reports
`,
  options: {
    json: { type: 'boolean', help: 'print exactly one JSON value on stdout' },
  },
  async run(ctx: CommandContext): Promise<number> {
    if (ctx.positionals.length > 0) throw new UsageError(`unexpected argument "${ctx.positionals[0]}"`);
    const report = doctorReport();
    if (ctx.values.json === true) ctx.stdout.write(`${JSON.stringify(report)}\n`);
    else ctx.stdout.write(formatDoctor(report));
    return 0;
  },
};

import { element, field, type Vmsd, vmsd } from '@e2k-migrate/vmstate';
import {
  AAU_AAD_COUNT,
  AAU_AREA_COUNT,
  AAU_INCR_COUNT,
  AAU_IND_COUNT,
  AAU_LDA_COUNT,
  AAU_STI_COUNT,
  aauDiffersFromReset,
} from './aau.js';
import type { E2kCpuState } from './state.js';

/** An AAD (`lo`, `hi`) as a struct element. */
export const vmstateE2kAad: Vmsd = vmsd({
  name: 'e2k-aad',
  version: 1,
  fields: [field.uint64('lo'), field.uint64('hi')],
});

/** One array-prefetch area (`pi`, `cdi`, `ldi`); the probe cache is not sent. */
export const vmstateE2kAauArea: Vmsd = vmsd({
  name: 'e2k-aau-area',
  version: 1,
  fields: [field.uint64('pi'), field.uint32('cdi'), field.uint32('ldi')],
});

/** Subsection `e2k-cpu/aau` (spec §5.1): sent when the AAU differs from its reset state. */
export const vmstateE2kCpuAau: Vmsd<E2kCpuState> = vmsd<E2kCpuState>({
  name: 'e2k-cpu/aau',
  version: 1,
  needed: (s) => aauDiffersFromReset(s.aau),
  fields: [
    field.uint32('aau.aasr'),
    field.uint32('aau.aafstr'),
    field.uint64('aau.aaldm'),
    field.uint64('aau.aaldv'),
    field.array('aau.aasti', element.uint32, AAU_STI_COUNT),
    field.uint16('aau.aasti_tags'),
    field.array('aau.aaind', element.uint32, AAU_IND_COUNT),
    field.uint16('aau.aaind_tags'),
    field.array('aau.aaincr', element.uint32, AAU_INCR_COUNT),
    field.uint8('aau.aaincr_tags'),
    field.array('aau.aad', element.struct(vmstateE2kAad), AAU_AAD_COUNT),
    field.array('aau.aalda', element.uint8, AAU_LDA_COUNT),
    field.array('aau.apb_l', element.struct(vmstateE2kAauArea), AAU_AREA_COUNT),
    field.array('aau.apb_r', element.struct(vmstateE2kAauArea), AAU_AREA_COUNT),
  ],
});

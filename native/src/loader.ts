import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { ADDON_ABI_VERSION, type NativeAddon } from './addon.js';
import { NativeLoadError, NativeUnavailableError } from './errors.js';
import { installExitHooks } from './exit-hooks.js';
import type { BackendName } from './types.js';

/** Which backend is in use and why. */
export interface BackendInfo {
  readonly name: BackendName;
  /** Human-readable reason, e.g. `loaded build/Release/e2k_native.node` or `E2K_NATIVE=0`. */
  readonly reason: string;
  /** `E2K_NATIVE` as read: `0`, `1` or `auto`. */
  readonly requested: '0' | '1' | 'auto';
  /** Absolute path of the addon binary (whether or not it loaded). */
  readonly binary: string;
}

const packageRoot = resolve(import.meta.dirname, '..');
/** Where node-gyp puts the addon. */
export const ADDON_PATH = join(packageRoot, 'build', 'Release', 'e2k_native.node');
const STATUS_PATH = join(packageRoot, 'build', 'status.json');

let loaded: { addon: NativeAddon | undefined; info: BackendInfo } | undefined;

function requested(): '0' | '1' | 'auto' {
  const v = (process.env.E2K_NATIVE ?? 'auto').trim();
  if (v === '0' || v === '1' || v === 'auto' || v === '') return v === '' ? 'auto' : v;
  throw new NativeLoadError(ADDON_PATH, `E2K_NATIVE must be 0, 1 or auto, found ${JSON.stringify(v)}`);
}

/** The reason the install-time build recorded (build/status.json), if any. */
export function buildStatus(): { ok: boolean; reason: string; detail?: string; at?: string } | undefined {
  if (!existsSync(STATUS_PATH)) return undefined;
  try {
    return JSON.parse(readFileSync(STATUS_PATH, 'utf8')) as { ok: boolean; reason: string };
  } catch {
    return undefined;
  }
}

function isModuleNotFound(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  return e?.code === 'MODULE_NOT_FOUND' && String(e.message).includes('e2k_native.node');
}

function load(): { addon: NativeAddon | undefined; info: BackendInfo } {
  const req = requested();
  const base = { requested: req, binary: ADDON_PATH };
  if (req === '0') return { addon: undefined, info: { ...base, name: 'fallback', reason: 'forced by E2K_NATIVE=0' } };
  if (process.platform !== 'linux') {
    if (req === '1') throw new NativeUnavailableError(`platform ${process.platform} is not Linux (E2K_NATIVE=1)`);
    return { addon: undefined, info: { ...base, name: 'fallback', reason: `platform ${process.platform}` } };
  }
  let addon: NativeAddon;
  try {
    addon = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
  } catch (err) {
    if (!isModuleNotFound(err)) {
      // A present but unloadable binary is a real error, never a silent fallback.
      throw new NativeLoadError(ADDON_PATH, (err as Error).message, err);
    }
    const status = buildStatus();
    const why = `addon not built${status && !status.ok ? `: ${status.reason}` : ''} (run \`pnpm --filter @e2k-migrate/native build:addon\`)`;
    if (req === '1') throw new NativeUnavailableError(`${why} (E2K_NATIVE=1)`);
    return { addon: undefined, info: { ...base, name: 'fallback', reason: why } };
  }
  if (addon.abiVersion !== ADDON_ABI_VERSION) {
    throw new NativeLoadError(
      ADDON_PATH,
      `stale binary: ABI version ${addon.abiVersion}, expected ${ADDON_ABI_VERSION} (rebuild with \`pnpm --filter @e2k-migrate/native build:addon\`)`,
    );
  }
  installExitHooks(addon);
  return {
    addon,
    info: { ...base, name: 'native', reason: `loaded ${ADDON_PATH}${req === '1' ? ' (E2K_NATIVE=1)' : ''}` },
  };
}

function state(): { addon: NativeAddon | undefined; info: BackendInfo } {
  loaded ??= load();
  return loaded;
}

/** The backend the loader picked (loads it on first call; throws NativeLoadError for a broken binary). */
export function backendInfo(): BackendInfo {
  return state().info;
}

/** The addon, or undefined when the fallback is in use. */
export function nativeAddon(): NativeAddon | undefined {
  return state().addon;
}

/** The addon, or a NativeUnavailableError naming why not (for native-only operations). */
export function requireAddon(what: string): NativeAddon {
  const s = state();
  if (!s.addon) throw new NativeUnavailableError(`${what} needs the native backend (${s.info.reason})`);
  return s.addon;
}

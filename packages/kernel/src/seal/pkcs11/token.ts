// The PKCS#11 token: the native binding (loaded on first use) and how its failures are reported, the
// label rule, the PIN guard, and openPkcs11Token — one logged-in session on one token. The KEK on the
// token: kek.ts; sealing and unsealing with it: unsealer.ts.
import { createRequire } from 'node:module';
import type * as Pkcs11js from 'pkcs11js';
import type { PKCS11, TokenInfo } from 'pkcs11js';
import { CustosError, type ErrorCode, invalidInput } from '../../errors.js';

/**
 * An open, logged-in PKCS#11 session on one token (from openPkcs11Token). The PIN is not kept: the
 * session is what stays logged in. `close()` logs out, closes the session and, when it was the last
 * open token of its module, finalizes the module; every later use throws `hsm_unavailable`.
 */
export interface Pkcs11Token {
  /** CKA_LABEL of the token, as given (the slot was found by it). */
  readonly tokenLabel: string;
  /** Whether close() has run. */
  readonly closed: boolean;
  /** The loaded module and the session handle; throws `hsm_unavailable` once closed. */
  use(): { module: PKCS11; session: Buffer };
  close(): void;
}

let loaded: typeof Pkcs11js | undefined;

/**
 * The pkcs11js binding (a native addon), loaded at the first PKCS#11 call rather than when the
 * kernel is imported: a deployment that does not use an HSM neither loads nor needs it. A binding
 * that fails to load is `hsm_unavailable`.
 */
export function loadPkcs11js(): typeof Pkcs11js {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)('pkcs11js') as typeof Pkcs11js;
    } catch (error) {
      throw pkcs11Error('hsm_unavailable', 'loading the pkcs11js binding', error);
    }
  }
  return loaded;
}

// pkcs11js throws Pkcs11Error('CKR_PIN_INCORRECT') from most calls, a plain Error('CKR_…:16') from a few
const RETURN_CODE_NAME = /^(CKR_[A-Z0-9_]+)(?::\d+)?$/;

/**
 * The PKCS#11 return code name of an error thrown by pkcs11js (its message is the name, e.g.
 * `CKR_PIN_INCORRECT`), or undefined for anything else.
 */
export function pkcs11ReturnCode(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  return RETURN_CODE_NAME.exec(error.message.trim())?.[1];
}

/**
 * A kernel error for a failed PKCS#11 call: the code given, a message naming what was being done and
 * the PKCS#11 return code name (and what it means here, if given), and `details.pkcs11`. Nothing else from the token or the binding is
 * kept — not its message, stack or arguments (the PIN went through C_Login), so the original error
 * is deliberately not attached as `cause`.
 */
export function pkcs11Error(code: ErrorCode, doing: string, error: unknown, meaning?: string): CustosError {
  const returnCode = pkcs11ReturnCode(error) ?? 'an error of the PKCS#11 binding';
  const suffix = meaning === undefined ? '' : ` (${meaning})`;
  return new CustosError(code, `PKCS#11: ${doing} failed with ${returnCode}${suffix}`, { details: { pkcs11: returnCode } });
}

/** A token label is 32 bytes in PKCS#11 (CK_TOKEN_INFO.label). */
export const TOKEN_LABEL_MAX_BYTES = 32;

/**
 * A PKCS#11 label we accept: 1..maxBytes UTF-8 bytes, well-formed, no control characters, no
 * leading or trailing blank (token labels are blank-padded, so trailing blanks could not be told
 * apart).
 */
export function assertPkcs11Label(value: unknown, field: string, maxBytes: number): string {
  if (typeof value !== 'string') throw invalidInput(field, 'a string', typeof value);
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes === 0 || bytes > maxBytes) throw invalidInput(field, `1..${maxBytes} UTF-8 bytes`, `${bytes} bytes`);
  if (!value.isWellFormed()) throw invalidInput(field, 'well-formed Unicode (no lone surrogates)');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(value)) throw invalidInput(field, 'no control characters');
  if (value.trim() !== value) throw invalidInput(field, 'no leading or trailing blanks');
  return value;
}

/**
 * CK_TOKEN_INFO flags (PKCS#11 v2.40 §3.2, pkcs11t.h) that say the user PIN is at risk: a wrong
 * login has already failed (COUNT_LOW), the next wrong one locks the PIN (FINAL_TRY), or it is
 * locked (LOCKED). The standard's values, so that this check needs no native binding.
 */
export const CKF_USER_PIN_COUNT_LOW = 0x0001_0000;
export const CKF_USER_PIN_FINAL_TRY = 0x0002_0000;
export const CKF_USER_PIN_LOCKED = 0x0004_0000;

const AT_RISK: ReadonlyArray<[number, string]> = [
  [CKF_USER_PIN_LOCKED, 'CKF_USER_PIN_LOCKED'],
  [CKF_USER_PIN_FINAL_TRY, 'CKF_USER_PIN_FINAL_TRY'],
  [CKF_USER_PIN_COUNT_LOW, 'CKF_USER_PIN_COUNT_LOW'],
];

/**
 * Refuses (`hsm_pin_protect`, details.pkcs11Flags naming the flags set) to try a PIN on a token
 * whose flags say a wrong one would lock it or has already been counted: an unauthenticated caller
 * must not be able to spend the operator's last PIN tries. The operator unseals such a token over
 * the admin socket (or with --pkcs11-pin-file at start), where no such check is made.
 */
export function assertPinNotAtRisk(flags: number, tokenLabel: string): void {
  const set = AT_RISK.filter(([bit]) => (flags & bit) !== 0).map(([, name]) => name);
  if (set.length === 0) return;
  throw new CustosError(
    'hsm_pin_protect',
    `PKCS#11: the token ${JSON.stringify(tokenLabel)} reports ${set.join(', ')}: a PIN from the network is not tried; unseal over the admin socket (custos unseal --admin-socket)`,
    { details: { field: 'pin', tokenLabel, pkcs11Flags: set } },
  );
}

export interface OpenPkcs11TokenOptions {
  /** Path of the PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so. */
  modulePath: string;
  /** CKA_LABEL of the token; exactly one slot must hold a token with this label. */
  tokenLabel: string;
  /** The user PIN (UTF-8). Used for C_Login only; the caller keeps and wipes its buffer. */
  pin: Uint8Array;
  /**
   * Read the token's flags (C_GetTokenInfo) before C_Login and refuse `hsm_pin_protect` when they
   * say the PIN is at risk (see assertPinNotAtRisk): for PINs that come from the network.
   */
  protectPin?: boolean;
  /** Seam for tests: how the token's information is read (default: the module's C_GetTokenInfo). */
  getTokenInfo?: (module: PKCS11, slot: Buffer) => Pick<TokenInfo, 'flags'>;
}

const readTokenInfo = (module: PKCS11, slot: Buffer): Pick<TokenInfo, 'flags'> => module.C_GetTokenInfo(slot);

/**
 * A PKCS#11 library is process-wide by the standard: a second C_Initialize fails with
 * CKR_CRYPTOKI_ALREADY_INITIALIZED and C_Finalize ends every session of the process. So every token
 * opened on one library path shares one loaded module, initialised at the first open and finalized
 * when the last open token closes (the library stays mapped: SoftHSM2 re-reads SOFTHSM2_CONF at the
 * next C_Initialize). The login state is per token and per process as well, hence `openSlots`: a
 * second open of the same token would share (and its close would end) the first one's login.
 */
interface LoadedModule {
  module: PKCS11;
  initialized: boolean;
  openSlots: Set<string>;
}
const modules = new Map<string, LoadedModule>();

// PKCS#11 return codes that mean "this PIN is not the user's PIN" rather than "the token is unusable"
const WRONG_PIN = new Set(['CKR_PIN_INCORRECT', 'CKR_PIN_INVALID', 'CKR_PIN_LEN_RANGE']);

function acquireModule(modulePath: string): LoadedModule {
  const p = loadPkcs11js();
  let entry = modules.get(modulePath);
  if (entry === undefined) {
    const module = new p.PKCS11();
    try {
      module.load(modulePath);
    } catch (error) {
      throw pkcs11Error('hsm_unavailable', `loading the module ${JSON.stringify(modulePath)}`, error);
    }
    entry = { module, initialized: false, openSlots: new Set() };
    modules.set(modulePath, entry);
  }
  if (!entry.initialized) {
    try {
      entry.module.C_Initialize();
    } catch (error) {
      throw pkcs11Error('hsm_unavailable', 'C_Initialize', error);
    }
    entry.initialized = true;
  }
  return entry;
}

function releaseModule(entry: LoadedModule): void {
  if (entry.openSlots.size > 0 || !entry.initialized) return;
  entry.initialized = false;
  try {
    entry.module.C_Finalize();
  } catch {
    // nothing is open any more; a failing finalize leaves nothing to clean up
  }
}

/** The one slot whose token carries `tokenLabel` (labels are blank-padded to 32 bytes by PKCS#11). */
function findSlot(module: PKCS11, tokenLabel: string): Buffer {
  let slots: Buffer[];
  try {
    slots = module.C_GetSlotList(true);
  } catch (error) {
    throw pkcs11Error('hsm_unavailable', 'C_GetSlotList', error);
  }
  const matching = slots.filter((slot) => {
    try {
      return module.C_GetTokenInfo(slot).label.replace(/[ \0]+$/, '') === tokenLabel;
    } catch {
      return false; // a slot whose token vanished meanwhile is not ours
    }
  });
  if (matching.length === 0) {
    throw new CustosError('hsm_unavailable', `PKCS#11: no slot holds a token labelled ${JSON.stringify(tokenLabel)}`, {
      details: { tokenLabel },
    });
  }
  if (matching.length > 1) {
    throw new CustosError('hsm_unavailable', `PKCS#11: ${matching.length} tokens are labelled ${JSON.stringify(tokenLabel)}; refusing to guess`, {
      details: { tokenLabel },
    });
  }
  return matching[0] as Buffer;
}

/**
 * Opens a read/write session on the token labelled `tokenLabel` and logs in as the user. A wrong PIN
 * is `unseal_failed` (details.pkcs11 names the return code, e.g. CKR_PIN_INCORRECT); a library that
 * does not load, an absent token or any other refusal is `hsm_unavailable`. With `protectPin`, a
 * token whose flags say the PIN is at risk is refused `hsm_pin_protect` before any C_Login. The PIN is passed to
 * C_Login and not kept (the binding takes it as a string, which cannot be wiped; no copy is held).
 */
export function openPkcs11Token({ modulePath, tokenLabel, pin, protectPin = false, getTokenInfo = readTokenInfo }: OpenPkcs11TokenOptions): Pkcs11Token {
  // The module: a non-empty path
  if (typeof modulePath !== 'string' || modulePath.length === 0) throw invalidInput('modulePath', 'a path to a PKCS#11 library', typeof modulePath);
  // The token label: 1..32 UTF-8 bytes, printable
  assertPkcs11Label(tokenLabel, 'tokenLabel', TOKEN_LABEL_MAX_BYTES);
  // The PIN: non-empty UTF-8 (CK_UTF8CHAR)
  if (!(pin instanceof Uint8Array) || pin.length === 0) throw invalidInput('pin', 'a non-empty byte string');
  let pinText: string;
  try {
    pinText = new TextDecoder('utf-8', { fatal: true }).decode(pin);
  } catch {
    throw invalidInput('pin', 'UTF-8 text');
  }

  const entry = acquireModule(modulePath);
  const p = loadPkcs11js();
  const { module } = entry;
  let slotKey: string | undefined;
  let session: Buffer | undefined;
  try {
    const slot = findSlot(module, tokenLabel);
    slotKey = slot.toString('hex');
    if (entry.openSlots.has(slotKey)) {
      slotKey = undefined;
      throw new CustosError('hsm_unavailable', `PKCS#11: the token ${JSON.stringify(tokenLabel)} is already open in this process`, {
        details: { tokenLabel },
      });
    }
    entry.openSlots.add(slotKey);
    if (protectPin) {
      let flags: number;
      try {
        flags = getTokenInfo(module, slot).flags;
      } catch (error) {
        throw pkcs11Error('hsm_unavailable', 'C_GetTokenInfo', error);
      }
      assertPinNotAtRisk(flags, tokenLabel);
    }
    try {
      session = module.C_OpenSession(slot, p.CKF_SERIAL_SESSION | p.CKF_RW_SESSION);
    } catch (error) {
      throw pkcs11Error('hsm_unavailable', 'C_OpenSession', error);
    }
    try {
      module.C_Login(session, p.CKU_USER, pinText);
    } catch (error) {
      const code = pkcs11ReturnCode(error);
      throw pkcs11Error(code !== undefined && WRONG_PIN.has(code) ? 'unseal_failed' : 'hsm_unavailable', 'C_Login', error);
    }
  } catch (error) {
    if (session !== undefined) {
      try {
        module.C_CloseSession(session);
      } catch {
        // the session is being abandoned after a failure already reported
      }
    }
    if (slotKey !== undefined) entry.openSlots.delete(slotKey);
    releaseModule(entry);
    throw error;
  }

  const openSession = session;
  const openSlot = slotKey;
  let closed = false;
  return {
    tokenLabel,
    get closed() {
      return closed;
    },
    use() {
      if (closed) throw new CustosError('hsm_unavailable', `PKCS#11: the session on token ${JSON.stringify(tokenLabel)} is closed`);
      return { module, session: openSession };
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        module.C_Logout(openSession);
      } catch {
        // closing the session below ends the login anyway
      }
      try {
        module.C_CloseSession(openSession);
      } catch {
        // finalizing the module below closes it in any case
      }
      entry.openSlots.delete(openSlot);
      releaseModule(entry);
    },
  };
}

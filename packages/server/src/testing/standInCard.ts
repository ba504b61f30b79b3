import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { HDKey } from '@scure/bip32';

/**
 * A STAND-IN for a TAPSIGNER card (the card's emulator needs Python packages this machine lacks:
 * PITFALLS.md), written on @noble/curves + @scure/bip32 — an implementation independent of the
 * kernel's verifier. It answers the way the card's protocol documents: `xpub` returns the account
 * xpub (default path m/84'/0'/0', testnet `tpub` or mainnet `xpub` version bytes); `sign` signs the
 * raw 32-byte digest it is given at a non-hardened subpath below it, with a random k (extraEntropy)
 * and low s, and answers r‖s (64 bytes) — or, as host libraries present it, 65 bytes with a header
 * byte first (39 + recid by default).
 */

const TESTNET = { private: 0x04358394, public: 0x043587cf };
const MAINNET = { private: 0x0488ade4, public: 0x0488b21e };
const N = secp256k1.Point.CURVE().n;

export interface StandInCard {
  /** The account xpub as the card's `xpub` command returns it. */
  xpub: string;
  /** The account xprv (never given to the signer: the tests check that it is refused). */
  xprv: string;
  /** The compressed public key at `subpath` (hex). */
  publicKey(subpath?: string): string;
  /** r‖s (hex, 64 bytes) over the raw digest (hex) at `subpath`, low s, random k. */
  sign(digestHex: string, subpath?: string): string;
  /** The 65-byte form: a header byte, then r‖s (hex); the header is `headerBase` + the recovery id. */
  signWithHeader(digestHex: string, subpath?: string, headerBase?: number): { hex: string; recovery: number };
}

function pathOf(subpath: string): string {
  const body = subpath.replace(/^m\/?/, '');
  return body === '' ? 'm' : `m/${body}`;
}

export function standInCard(seed: Uint8Array, { testnet = true, account = "m/84'/0'/0'" }: { testnet?: boolean; account?: string } = {}): StandInCard {
  const root = HDKey.fromMasterSeed(seed, testnet ? TESTNET : MAINNET);
  const accountKey = root.derive(account);
  const keyAt = (subpath: string) => {
    const key = accountKey.derive(pathOf(subpath));
    if (key.privateKey === null || key.publicKey === null) throw new Error('the stand-in card has no key at that path');
    return key;
  };
  const signRecovered = (digestHex: string, subpath: string) => {
    const key = keyAt(subpath);
    const signature = secp256k1.sign(hexToBytes(digestHex), key.privateKey as Uint8Array, { prehash: false, lowS: true, extraEntropy: true });
    return { recovery: signature.recovery, compact: signature.toBytes('compact') };
  };
  return {
    xpub: accountKey.publicExtendedKey,
    xprv: accountKey.privateExtendedKey,
    publicKey: (subpath = '') => bytesToHex(keyAt(subpath).publicKey as Uint8Array),
    sign: (digestHex, subpath = '') => bytesToHex(signRecovered(digestHex, subpath).compact),
    signWithHeader: (digestHex, subpath = '', headerBase = 39) => {
      const { recovery, compact } = signRecovered(digestHex, subpath);
      return { hex: bytesToHex(new Uint8Array([headerBase + recovery, ...compact])), recovery };
    },
  };
}

/** The same signature with s replaced by n − s (high s): still a valid ECDSA signature, one no card makes. */
export function highS(signatureHex: string): string {
  const bytes = hexToBytes(signatureHex);
  const s = BigInt(`0x${bytesToHex(bytes.slice(32, 64))}`);
  return bytesToHex(bytes.slice(0, 32)) + (N - s).toString(16).padStart(64, '0');
}

import { p256 } from '@noble/curves/nist.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from '@noble/hashes/utils.js';

/**
 * A WebAuthn authenticator and client in software, for tests that drive the kernel's passkey
 * factor without a browser — and that lie to it on purpose. It is written from the specification
 * (WebAuthn level 3 §6.1 authenticator data, §6.5 attestation objects, §5.8.1 client data; RFC 9052
 * COSE keys; RFC 8949 CBOR) on @noble/curves and @noble/hashes only: it shares no code with
 * SimpleWebAuthn (nor with its CBOR decoder), so that a test where both agree is a cross-check
 * rather than one library verifying its own output.
 *
 * It takes the options as the kernel hands them to a browser (PublicKeyCredentialCreationOptionsJSON,
 * PublicKeyCredentialRequestOptionsJSON) and answers as `@simplewebauthn/browser`'s
 * startRegistration / startAuthentication would (RegistrationResponseJSON, AuthenticationResponseJSON):
 * ES256 (P-256) keys, attestation `none`, AAGUID zero, flags UP|UV (and AT at registration), a
 * signature counter per credential. Each ceremony takes knobs that a real browser or authenticator
 * would never let through (another origin or rpID, no user verification, a counter rolled back, a
 * response made inside a frame, another challenge, another key): the attacks the kernel must refuse.
 */

// --- base64url (RFC 4648 §5, no padding: how WebAuthn's JSON forms carry bytes) ---

export function toBase64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

export function fromBase64url(text: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(text)) throw new Error(`not base64url: ${text.slice(0, 40)}`);
  return new Uint8Array(Buffer.from(text.replace(/=+$/, ''), 'base64url'));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function uint32(value: number): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) throw new Error(`not a 32-bit counter: ${value}`);
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}

// --- CBOR (RFC 8949), the subset WebAuthn needs: ints, byte and text strings, arrays, maps ---

/** A value the encoder takes: integers (safe range), bytes, text, arrays, and maps with integer or text keys. */
export type CborValue = number | Uint8Array | string | CborValue[] | Map<number | string, CborValue>;

/** The head of a data item: major type and argument (RFC 8949 §3). */
function cborHead(major: number, argument: number): Uint8Array {
  if (!Number.isSafeInteger(argument) || argument < 0) throw new Error(`CBOR argument out of range: ${argument}`);
  const type = major << 5;
  if (argument < 24) return Uint8Array.of(type | argument);
  if (argument < 0x100) return Uint8Array.of(type | 24, argument);
  if (argument < 0x1_0000) return Uint8Array.of(type | 25, argument >> 8, argument & 0xff);
  if (argument < 0x1_0000_0000) return concat(Uint8Array.of(type | 26), uint32(argument));
  const out = new Uint8Array(9);
  out[0] = type | 27;
  new DataView(out.buffer).setBigUint64(1, BigInt(argument));
  return out;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return a.length - b.length;
}

/**
 * Encodes `value` deterministically (RFC 8949 §4.2.1: shortest heads, map keys sorted by their
 * encoded bytes — for WebAuthn's maps the same order as CTAP2's canonical form).
 */
export function cborEncode(value: CborValue): Uint8Array {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new Error(`CBOR: not an integer: ${value}`);
    return value >= 0 ? cborHead(0, value) : cborHead(1, -1 - value);
  }
  if (value instanceof Uint8Array) return concat(cborHead(2, value.length), value);
  if (typeof value === 'string') {
    const utf8 = new TextEncoder().encode(value);
    return concat(cborHead(3, utf8.length), utf8);
  }
  if (Array.isArray(value)) return concat(cborHead(4, value.length), ...value.map(cborEncode));
  const entries = [...value].map(([k, v]) => [cborEncode(k), cborEncode(v)] as const);
  // A Map holds each key once, and 1 and '1' encode differently: no duplicate can reach here.
  entries.sort(([a], [b]) => compareBytes(a, b));
  return concat(cborHead(5, entries.length), ...entries.flat());
}

// --- the JSON forms (the fields this authenticator reads and writes) ---

export interface CreationOptionsJSON {
  rp: { id?: string; name: string };
  user: { id: string; name: string; displayName: string };
  challenge: string;
  pubKeyCredParams: Array<{ alg: number; type: string }>;
  timeout?: number;
  excludeCredentials?: Array<{ id: string; type: string; transports?: string[] }>;
  authenticatorSelection?: { residentKey?: string; requireResidentKey?: boolean; userVerification?: string; authenticatorAttachment?: string };
  attestation?: string;
  extensions?: object;
}

export interface RequestOptionsJSON {
  challenge: string;
  rpId?: string;
  timeout?: number;
  allowCredentials?: Array<{ id: string; type: string; transports?: string[] }>;
  userVerification?: string;
  extensions?: object;
}

/** WebAuthn's transport hints (what a browser reports at registration). */
export type Transport = 'ble' | 'cable' | 'hybrid' | 'internal' | 'nfc' | 'smart-card' | 'usb';

export interface RegistrationResponse {
  id: string;
  rawId: string;
  type: 'public-key';
  response: {
    clientDataJSON: string;
    attestationObject: string;
    authenticatorData: string;
    transports: Transport[];
    publicKeyAlgorithm: number;
    /** SubjectPublicKeyInfo (DER), as browsers add for convenience. */
    publicKey: string;
  };
  authenticatorAttachment: 'platform';
  clientExtensionResults: Record<string, never>;
}

export interface AuthenticationResponse {
  id: string;
  rawId: string;
  type: 'public-key';
  response: { clientDataJSON: string; authenticatorData: string; signature: string; userHandle?: string };
  authenticatorAttachment: 'platform';
  clientExtensionResults: Record<string, never>;
}

/** A credential the authenticator holds (exposed so that tests can copy or compare keys). */
export interface SoftCredential {
  /** The credential id, base64url. */
  id: string;
  /** The P-256 secret key (32 bytes). */
  secretKey: Uint8Array;
  /** The uncompressed public point (65 bytes). */
  publicKey: Uint8Array;
  rpId: string;
  /** The WebAuthn user handle it was created for (base64url). */
  userHandle: string;
  /** The signature counter as last used. */
  counter: number;
}

/** What a ceremony may be made to lie about; every default is what an honest browser on `origin` sends. */
export interface CeremonyKnobs {
  /** clientData.origin (default: the authenticator's origin). */
  origin?: string;
  /** The rpID whose SHA-256 goes into the authenticator data (default: the options' rpID, else the origin's host). */
  rpId?: string;
  /** The UP flag (default true). */
  userPresent?: boolean;
  /** The UV flag (default true): false is an authenticator that did not verify its user. */
  userVerified?: boolean;
  /** clientData.crossOrigin (default false): true is a ceremony run inside a frame of another site. */
  crossOrigin?: boolean;
  /** clientData.topOrigin (absent by default): the top-level origin of a framed ceremony. */
  topOrigin?: string;
  /** Answers this challenge (base64url or bytes) instead of the options'. */
  challenge?: string | Uint8Array;
  /** clientData.type (default webauthn.create / webauthn.get). */
  type?: string;
  /** The signature counter to put in the authenticator data; it becomes the credential's counter (default: registration 0, each assertion +1). */
  counter?: number;
}

export interface RegistrationKnobs extends CeremonyKnobs {
  /** Registers this credential again (same id and key) instead of a new one: a duplicate credential id. */
  reuse?: string;
  /** Ignore the options' excludeCredentials (a real authenticator refuses to register an excluded credential again). */
  ignoreExclude?: boolean;
}

export interface AuthenticationKnobs extends CeremonyKnobs {
  /** Answers with this held credential whatever allowCredentials says (default: the first held one it allows). */
  credentialId?: string;
  /** Signs with this P-256 secret key instead of the credential's own (another key, the same credential id). */
  signWith?: Uint8Array;
}

const ES256 = -7;
const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_AT = 0x40;
/** DER prefix of a P-256 SubjectPublicKeyInfo with an uncompressed point (RFC 5480). */
const SPKI_P256_PREFIX = Uint8Array.from(Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'));

/** The COSE_Key of an ES256 public key (RFC 9053 §7.1.1: kty EC2, alg ES256, crv P-256, x, y). */
export function coseEs256Key(publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== 65 || publicKey[0] !== 0x04) throw new Error('an uncompressed P-256 point is 65 bytes starting 04');
  return cborEncode(
    new Map<number, CborValue>([
      [1, 2],
      [3, ES256],
      [-1, 1],
      [-2, publicKey.subarray(1, 33)],
      [-3, publicKey.subarray(33, 65)],
    ]),
  );
}

export class SoftAuthenticator {
  readonly origin: string;
  readonly #credentials = new Map<string, SoftCredential>();

  /** `origin`: where the "browser" runs the ceremonies (e.g. `http://localhost:8420`). */
  constructor(origin: string) {
    this.origin = origin;
  }

  /** A held credential by id (throws when it is not held). */
  credential(id: string): SoftCredential {
    const credential = this.#credentials.get(id);
    if (credential === undefined) throw new Error(`no such credential: ${id}`);
    return credential;
  }

  /** Every held credential, in creation order. */
  get credentials(): SoftCredential[] {
    return [...this.#credentials.values()];
  }

  /** navigator.credentials.create(): a new ES256 credential, attestation `none`. */
  create(options: CreationOptionsJSON, knobs: RegistrationKnobs = {}): RegistrationResponse {
    if (!options.pubKeyCredParams.some((p) => p.type === 'public-key' && p.alg === ES256))
      throw new Error('NotSupportedError: the options do not accept ES256');
    const rpId = options.rp.id ?? new URL(this.origin).hostname;
    if (!knobs.ignoreExclude && options.excludeCredentials?.some((c) => this.#credentials.get(c.id)?.rpId === rpId))
      throw new Error('InvalidStateError: this authenticator holds an excluded credential');
    let credential: SoftCredential;
    if (knobs.reuse === undefined) {
      const secretKey = p256.utils.randomSecretKey();
      credential = {
        id: toBase64url(randomBytes(32)),
        secretKey,
        publicKey: p256.getPublicKey(secretKey, false),
        rpId,
        userHandle: options.user.id,
        counter: knobs.counter ?? 0,
      };
    } else {
      credential = { ...this.credential(knobs.reuse), rpId, userHandle: options.user.id, counter: knobs.counter ?? 0 };
    }
    this.#credentials.set(credential.id, credential);
    const clientDataJSON = this.#clientData('webauthn.create', options.challenge, knobs);
    const credentialId = fromBase64url(credential.id);
    const attested = concat(
      new Uint8Array(16),
      Uint8Array.of(credentialId.length >> 8, credentialId.length & 0xff),
      credentialId,
      coseEs256Key(credential.publicKey),
    );
    const authData = this.#authData(knobs.rpId ?? rpId, knobs, FLAG_AT, credential.counter, attested);
    const attestationObject = cborEncode(
      new Map<string, CborValue>([
        ['fmt', 'none'],
        ['attStmt', new Map()],
        ['authData', authData],
      ]),
    );
    return {
      id: credential.id,
      rawId: credential.id,
      type: 'public-key',
      response: {
        clientDataJSON: toBase64url(clientDataJSON),
        attestationObject: toBase64url(attestationObject),
        authenticatorData: toBase64url(authData),
        transports: ['internal'],
        publicKeyAlgorithm: ES256,
        publicKey: toBase64url(concat(SPKI_P256_PREFIX, credential.publicKey)),
      },
      authenticatorAttachment: 'platform',
      clientExtensionResults: {},
    };
  }

  /** navigator.credentials.get(): an assertion over authenticatorData ‖ SHA-256(clientDataJSON) (DER ECDSA). */
  get(options: RequestOptionsJSON, knobs: AuthenticationKnobs = {}): AuthenticationResponse {
    const rpId = options.rpId ?? new URL(this.origin).hostname;
    const allowed = options.allowCredentials ?? [];
    const credential =
      knobs.credentialId !== undefined
        ? this.credential(knobs.credentialId)
        : this.credentials.find((c) => (allowed.length === 0 ? c.rpId === rpId : allowed.some((a) => a.id === c.id)));
    if (credential === undefined) throw new Error('NotAllowedError: no credential of this authenticator is allowed');
    credential.counter = knobs.counter ?? credential.counter + 1;
    const clientDataJSON = this.#clientData('webauthn.get', options.challenge, knobs);
    const authData = this.#authData(knobs.rpId ?? rpId, knobs, 0, credential.counter);
    // ES256 over authenticatorData ‖ SHA-256(clientDataJSON) (prehash: SHA-256 here), low s, DER-encoded as an assertion carries it
    const signature = p256.sign(concat(authData, sha256(clientDataJSON)), knobs.signWith ?? credential.secretKey, { prehash: true, lowS: true }).toBytes('der');
    return {
      id: credential.id,
      rawId: credential.id,
      type: 'public-key',
      response: {
        clientDataJSON: toBase64url(clientDataJSON),
        authenticatorData: toBase64url(authData),
        signature: toBase64url(signature),
        userHandle: credential.userHandle,
      },
      authenticatorAttachment: 'platform',
      clientExtensionResults: {},
    };
  }

  /** The client data (§5.8.1) in the member order browsers serialise it: type, challenge, origin, crossOrigin, topOrigin. */
  #clientData(type: string, challenge: string, knobs: CeremonyKnobs): Uint8Array {
    // Browsers decode the options' challenge to bytes and encode it again (base64url, no padding).
    const bytes =
      knobs.challenge === undefined ? fromBase64url(challenge) : typeof knobs.challenge === 'string' ? fromBase64url(knobs.challenge) : knobs.challenge;
    const data: Record<string, unknown> = {
      type: knobs.type ?? type,
      challenge: toBase64url(bytes),
      origin: knobs.origin ?? this.origin,
      crossOrigin: knobs.crossOrigin ?? false,
    };
    if (knobs.topOrigin !== undefined) data.topOrigin = knobs.topOrigin;
    return new TextEncoder().encode(JSON.stringify(data));
  }

  /** Authenticator data (§6.1): rpIdHash ‖ flags ‖ signCount (big-endian) ‖ attested credential data. */
  #authData(rpId: string, knobs: CeremonyKnobs, extraFlags: number, counter: number, attested: Uint8Array = new Uint8Array(0)): Uint8Array {
    const flags = ((knobs.userPresent ?? true) ? FLAG_UP : 0) | ((knobs.userVerified ?? true) ? FLAG_UV : 0) | extraFlags;
    return concat(sha256(new TextEncoder().encode(rpId)), Uint8Array.of(flags), uint32(counter), attested);
  }
}

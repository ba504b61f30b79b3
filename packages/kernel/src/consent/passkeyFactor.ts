import { base64urlnopad } from '@scure/base';
import type {
  AuthenticationResponseJSON,
  AuthenticatorTransportFuture,
  PublicKeyCredentialCreationOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { CustosError, invalidInput } from '../errors.js';
import type { PasskeyCredentialRecord, PasskeyFactorState, StoreTx, WalletRows } from '../store/types.js';
import type { Factor, FactorRecord, FactorRows } from './Factor.js';
import { loadWebAuthn } from './loadWebAuthn.js';

/**
 * Passkeys (WebAuthn, with @simplewebauthn/server) as a Factor: registered by the owner on the
 * kernel's enrolment page, and answering, on the kernel's approval page, a challenge the kernel
 * derived from one approval (kernel/approvalChallenge.ts) — so an assertion approves that opHash
 * and nothing else: `bound`. User verification (PIN or biometric) is required on both ceremonies,
 * checked by the server from the authenticator's flags (a browser's "required" is not trusted).
 * rpID and origin are exactly the public URL's host and origin (no parent domain); a response
 * made inside a frame (`crossOrigin`, `topOrigin`) is refused. A counter that does not increase
 * (when either is non-zero) is refused: a cloned authenticator.
 *
 * The state is the credential's public key, transports and rpID (fixed at registration) and its
 * counter; nothing is secret, everything is under the row's MAC (consent.ts).
 */

/** How long the browser's passkey dialog may stay open (ms). */
const CEREMONY_TIMEOUT_MS = 300_000;
/** A credential id, base64url (WebAuthn allows up to 1023 bytes). */
const CREDENTIAL_ID = /^[A-Za-z0-9_-]{16,1400}$/;
/** The base64url fields of a response: bounded, so that a huge body is refused before any parsing. */
const B64URL = /^[A-Za-z0-9_-]*={0,2}$/;
const MAX_FIELD = 16_384;
/** COSE algorithms a passkey may use: EdDSA, ES256, RS256 (SimpleWebAuthn's default offer). */
const SUPPORTED_ALGORITHMS = [-8, -7, -257];

export interface PasskeyShown {
  /** The options for `navigator.credentials.create` (SimpleWebAuthn's startRegistration({ optionsJSON })). */
  optionsJSON: PublicKeyCredentialCreationOptionsJSON;
}

/** The registration ceremony's data, fixed when the link is made (MAC'd in the link's row). */
export interface PasskeyPending {
  /** base64url of the 32 random bytes the authenticator must sign. */
  challenge: string;
  /** base64url of the random WebAuthn user handle (never the wallet name). */
  userId: string;
}

export interface PasskeySettingsForFactor {
  rpId: string;
  origin: string;
  rpName: string;
}

const KIND = 'passkey';
/** The refusal when a verified response's flags show no user verification (a second check after SimpleWebAuthn's). */
export const USER_NOT_VERIFIED = 'user verification missing';

/** The passkey_credentials table, mapped to FactorRecord (id: the credential id). */
const passkeyRows: FactorRows<PasskeyFactorState> = {
  stored: passkeyState,
  async read(tx: StoreTx, walletName: string) {
    return (await tx.listPasskeysForUpdate(walletName)).map(passkeyRecordOf);
  },
  fromWalletRows(rows: WalletRows) {
    return rows.passkeys.map(passkeyRecordOf);
  },
  async insert(tx, record) {
    await tx.insertPasskey({
      walletName: record.walletName,
      credentialId: record.id,
      ...passkeyState(record.state),
      enrolledVia: record.enrolledVia,
      createdAt: record.createdAt,
      mac: record.mac,
    });
  },
  async saveState(tx, record, state, mac) {
    await tx.updatePasskeyCounter(record.id, state.counter, mac);
  },
};

/** The state fields a passkey row keeps (what is MAC'd and saved). */
function passkeyState({ publicKey, counter, transports, rpId }: PasskeyFactorState): PasskeyFactorState {
  return { publicKey, counter, transports: [...transports], rpId };
}

function passkeyRecordOf(row: PasskeyCredentialRecord): FactorRecord<PasskeyFactorState> {
  return {
    kind: KIND,
    id: row.credentialId,
    version: 1,
    walletName: row.walletName,
    secretEnvelope: null,
    state: passkeyState(row),
    createdAt: row.createdAt,
    enrolledVia: row.enrolledVia,
    mac: row.mac,
  };
}

/** Bytes in an ArrayBuffer of their own (SimpleWebAuthn's types ask for one). */
function owned(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}

function passkeyInvalid(reason: string): CustosError {
  return new CustosError('passkey_invalid', `the passkey response was refused: ${reason}`, { details: { field: 'proof', reason } });
}

/** A response object as a browser's SimpleWebAuthn returns it: every field a bounded base64url string. Throws invalid_input. */
export function assertResponseShape(proof: unknown, fields: readonly string[]): { id: string; response: Record<string, unknown> } {
  if (typeof proof !== 'object' || proof === null || Array.isArray(proof)) throw invalidInput('proof', 'a passkey response object', typeof proof);
  const { id, rawId, type, response } = proof as Record<string, unknown>;
  if (typeof id !== 'string' || !CREDENTIAL_ID.test(id)) throw invalidInput('proof.id', 'a credential id (base64url)');
  if (rawId !== id) throw invalidInput('proof.rawId', 'the credential id again');
  if (type !== 'public-key') throw invalidInput('proof.type', "'public-key'");
  if (typeof response !== 'object' || response === null || Array.isArray(response)) throw invalidInput('proof.response', 'an object');
  const body = response as Record<string, unknown>;
  for (const field of fields) {
    const value = body[field];
    if (typeof value !== 'string' || value.length > MAX_FIELD || !B64URL.test(value)) throw invalidInput(`proof.response.${field}`, 'base64url text');
  }
  return { id, response: body };
}

/**
 * The client data's own refusals SimpleWebAuthn does not make: a ceremony run inside a frame of
 * another site (`crossOrigin: true`) or naming a top origin. Its type, challenge and origin are
 * checked by SimpleWebAuthn.
 */
export function assertNotFramed(clientDataJSON: string): void {
  let clientData: unknown;
  try {
    clientData = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(base64urlnopad.decode(clientDataJSON.replace(/=+$/, ''))));
  } catch {
    throw passkeyInvalid('its client data is not JSON');
  }
  if (typeof clientData !== 'object' || clientData === null) throw passkeyInvalid('its client data is not an object');
  const fields = clientData as Record<string, unknown>;
  if (fields.crossOrigin === true) throw passkeyInvalid('it was made inside a frame of another origin (crossOrigin)');
  if (Object.hasOwn(fields, 'topOrigin')) throw passkeyInvalid('it names a top origin (made inside a frame)');
}

/**
 * SimpleWebAuthn's refusals (plain Errors with messages) as the kernel's codes. Matched on the exact
 * start of its two messages that carry no client text: other messages quote the client's challenge,
 * origin or type, which must never pick the code (a forged response whose challenge reads "counter"
 * is not a cloned authenticator).
 */
export function asPasskeyRefusal(error: unknown): CustosError {
  if (error instanceof CustosError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (message.startsWith('Response counter value '))
    return new CustosError('passkey_counter_invalid', 'the passkey’s signature counter did not increase: nothing was approved', {
      details: { field: 'proof' },
    });
  if (message.startsWith('User verification required, but') || message.startsWith('User verification was required, but') || message === USER_NOT_VERIFIED)
    return new CustosError('passkey_user_not_verified', 'the passkey did not verify its user (PIN or biometric), which this signer requires', {
      details: { field: 'proof' },
    });
  // SimpleWebAuthn's messages name what did not match (origin, rpID, challenge, signature), never a secret.
  return passkeyInvalid(message.slice(0, 200));
}

/**
 * A passkey's registration (an owner's, or an admin's: kernel/quorum/adminPasskeys.ts) verified: over
 * `challenge` (base64url), from this origin and rpID, with user verification, not made inside a
 * frame, with one of the algorithms the options offer (never SimpleWebAuthn's legacy RS1). Returns
 * the credential to store. Throws the refusal (passkey_invalid, passkey_user_not_verified, invalid_input).
 */
export async function verifyPasskeyRegistration(
  proof: unknown,
  { challenge, origin, rpId }: { challenge: string; origin: string; rpId: string },
): Promise<{ id: string; publicKey: string; counter: number; transports: string[] }> {
  const { response } = assertResponseShape(proof, ['clientDataJSON', 'attestationObject']);
  assertNotFramed(response.clientDataJSON as string);
  const { verifyRegistrationResponse } = await loadWebAuthn();
  let verified: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
  try {
    verified = await verifyRegistrationResponse({
      response: proof as RegistrationResponseJSON,
      expectedChallenge: challenge,
      expectedOrigin: origin,
      expectedRPID: rpId,
      requireUserVerification: true,
      supportedAlgorithmIDs: SUPPORTED_ALGORITHMS,
    });
  } catch (error) {
    throw asPasskeyRefusal(error);
  }
  if (!verified.verified || verified.registrationInfo === undefined) throw passkeyInvalid('the registration did not verify');
  const { credential, userVerified } = verified.registrationInfo;
  if (!userVerified) throw asPasskeyRefusal(new Error(USER_NOT_VERIFIED));
  if (!CREDENTIAL_ID.test(credential.id)) throw invalidInput('proof.id', 'a credential id (base64url)');
  const transports = (credential.transports ?? []).filter((t) => typeof t === 'string' && t.length <= 32).slice(0, 8);
  return { id: credential.id, publicKey: base64urlnopad.encode(credential.publicKey), counter: credential.counter, transports };
}

export function passkeyFactor(settings: PasskeySettingsForFactor): Factor<PasskeyFactorState, PasskeyShown, PasskeyPending> {
  const { rpId, origin, rpName } = settings;
  /** The registration options for a link's pending ceremony (the same every time the page is shown). */
  const registrationOptions = async (walletName: string, pending: PasskeyPending) =>
    (await loadWebAuthn()).generateRegistrationOptions({
      rpName,
      rpID: rpId,
      userName: walletName,
      userID: owned(base64urlnopad.decode(pending.userId)),
      challenge: owned(base64urlnopad.decode(pending.challenge)),
      attestationType: 'none',
      supportedAlgorithmIDs: SUPPORTED_ALGORITHMS,
      authenticatorSelection: { residentKey: 'preferred', userVerification: 'required' },
      timeout: CEREMONY_TIMEOUT_MS,
    });
  return {
    kind: KIND,
    strength: 'bound',
    label: 'passkey',
    rows: passkeyRows,
    enroll: {
      async begin({ walletName, random }) {
        const pending: PasskeyPending = { challenge: base64urlnopad.encode(random(32)), userId: base64urlnopad.encode(random(16)) };
        return { secret: null, shown: { optionsJSON: await registrationOptions(walletName, pending) }, pending };
      },
      async show({ walletName, pending }) {
        return { optionsJSON: await registrationOptions(walletName, pending) };
      },
      async finish({ via, pending, proof }) {
        // The backend never registers a passkey: what it registered would be its own key.
        if (via !== 'page') throw invalidInput('kind', "a factor the backend may enrol ('passkey' is registered by its owner on the enrolment page)");
        if (proof === undefined || proof === null || proof === '')
          throw new CustosError('code_required', 'create the passkey on this page first', { details: { field: 'proof' } });
        const { id, publicKey, counter, transports } = await verifyPasskeyRegistration(proof, { challenge: pending.challenge, origin, rpId });
        return { id, state: { publicKey, counter, transports, rpId } };
      },
    },
    async challengeOptions({ records, challenge }) {
      const { generateAuthenticationOptions } = await loadWebAuthn();
      return generateAuthenticationOptions({
        rpID: rpId,
        challenge: owned(challenge),
        allowCredentials: records.map((r) => ({ id: r.id, transports: r.state.transports as AuthenticatorTransportFuture[] })),
        userVerification: 'required',
        timeout: CEREMONY_TIMEOUT_MS,
      });
    },
    /**
     * The assertion must answer the challenge the kernel derived for this approval (from the nonce
     * stored with it: never one the response names), come from this origin and rpID, show user
     * verification, and carry a counter above the stored one (when either is non-zero).
     * Refusals are not charged: an assertion cannot be guessed.
     */
    async verify({ wallet, approval, proof }) {
      if (approval?.challenge === undefined)
        throw new CustosError('challenge_required', 'no unspent passkey challenge was issued for this approval: ask for a new one', {
          details: { field: 'proof' },
        });
      const { id, response } = assertResponseShape(proof, ['clientDataJSON', 'authenticatorData', 'signature']);
      const state = wallet.factor.state;
      if (id !== wallet.factor.id) throw passkeyInvalid('it is from another credential');
      if (state.rpId !== rpId)
        throw new CustosError('record_unreadable', 'the passkey was registered for another host than this signer’s public URL', {
          details: { field: 'proof' },
        });
      assertNotFramed(response.clientDataJSON as string);
      const { verifyAuthenticationResponse } = await loadWebAuthn();
      let verified: Awaited<ReturnType<typeof verifyAuthenticationResponse>>;
      try {
        verified = await verifyAuthenticationResponse({
          response: proof as AuthenticationResponseJSON,
          expectedChallenge: base64urlnopad.encode(approval.challenge),
          expectedOrigin: origin,
          expectedRPID: rpId,
          credential: {
            id: wallet.factor.id,
            publicKey: owned(base64urlnopad.decode(state.publicKey)),
            counter: state.counter,
            transports: state.transports as AuthenticatorTransportFuture[],
          },
          requireUserVerification: true,
        });
      } catch (error) {
        throw asPasskeyRefusal(error);
      }
      if (!verified.verified) throw passkeyInvalid('the signature does not verify');
      const { newCounter, userVerified } = verified.authenticationInfo;
      if (!userVerified) throw asPasskeyRefusal(new Error(USER_NOT_VERIFIED));
      return {
        stateChange: { ...state, counter: newCounter },
        evidence: { factor: KIND, credentialId: wallet.factor.id, counter: newCounter, userVerified },
      };
    },
  };
}

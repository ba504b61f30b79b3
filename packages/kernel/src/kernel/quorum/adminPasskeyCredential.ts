import { createHash } from 'node:crypto';
import { base64urlnopad } from '@scure/base';
import type { AuthenticationResponseJSON, AuthenticatorTransportFuture, verifyAuthenticationResponse } from '@simplewebauthn/server';
import { loadWebAuthn } from '../../consent/loadWebAuthn.js';
import { asPasskeyRefusal, assertNotFramed, assertResponseShape, USER_NOT_VERIFIED } from '../../consent/passkeyFactor.js';
import { CustosError, invalidInput } from '../../errors.js';
import { canonicalJson } from '../../util/canonicalJson.js';
import { type AdminStatement, type APPROVE_LABEL, adminMessage, type PROPOSE_LABEL } from './adminKeys.js';

/**
 * A passkey admin's credential and what its assertions prove (docs/quorum.md, "Passkey admins").
 * A passkey admin is named `pk:` and the SHA-256 (hex) of its credential id's bytes; the admin set's
 * row (MAC'd) carries its credential id, COSE public key, rpID and transports. What it signs is the
 * same AdminStatement as a key-file admin: the WebAuthn challenge IS
 *   SHA-256(label ‖ 0 ‖ signerId ‖ 0 ‖ id ‖ 0 ‖ proposer ‖ 0 ‖ expiresAt ‖ 0 ‖ payloadHash)
 * (adminKeys.ts adminMessage), so an assertion approves that one proposal, under that label, on that
 * signer, and nothing else; no server-side random challenge is needed (the statement is unique per
 * proposal id, and ids are single use). User verification is required; origin and rpID are exactly
 * the public URL's, as for owner passkeys (consent/passkeyFactor.ts). The assertion is stored as is
 * (its authenticator data, client data and signature) and verified again wherever approvals are
 * counted.
 */

export const PASSKEY_ADMIN_PREFIX = 'pk:';
const PASSKEY_ADMIN_ID = /^pk:[0-9a-f]{64}$/;
const CREDENTIAL_ID = /^[A-Za-z0-9_-]{16,1400}$/;
const COSE_KEY = /^[A-Za-z0-9_-]{16,2048}$/;
const RP_ID = /^[a-z0-9.-]{1,253}$/;

/** What the admin set keeps of a passkey admin's credential. */
export interface AdminPasskeyCredential {
  /** base64url. */
  credentialId: string;
  /** The COSE public key, base64url. */
  publicKey: string;
  /** The rpID it was registered for (the public URL's host). */
  rpId: string;
  transports: string[];
}

/** Where admin passkeys are valid: the public URL's host and origin (KernelOptions.passkeys). */
export interface AdminPasskeySettings {
  rpId: string;
  origin: string;
  rpName: string;
}

/** `pk:` and SHA-256 (hex) of the credential id's bytes. */
export function adminPasskeyId(credentialId: string): string {
  return `${PASSKEY_ADMIN_PREFIX}${createHash('sha256')
    .update(base64urlnopad.decode(credentialId.replace(/=+$/, '')))
    .digest('hex')}`;
}

export function isPasskeyAdminId(value: string): boolean {
  return PASSKEY_ADMIN_ID.test(value);
}

export function assertPasskeyAdminId(value: unknown, field: string): string {
  if (typeof value !== 'string' || !PASSKEY_ADMIN_ID.test(value)) throw invalidInput(field, 'a passkey admin id (pk: and 64 lowercase hex digits)');
  return value;
}

export function parseAdminPasskeyCredential(value: unknown, field: string): AdminPasskeyCredential {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidInput(field, 'an object { credentialId, publicKey, rpId, transports }');
  const { credentialId, publicKey, rpId, transports = [], ...rest } = value as Record<string, unknown>;
  if (Object.keys(rest).length > 0) throw invalidInput(field, 'only credentialId, publicKey, rpId and transports', Object.keys(rest).join(', '));
  if (typeof credentialId !== 'string' || !CREDENTIAL_ID.test(credentialId)) throw invalidInput(`${field}.credentialId`, 'a credential id (base64url)');
  if (typeof publicKey !== 'string' || !COSE_KEY.test(publicKey)) throw invalidInput(`${field}.publicKey`, 'a COSE public key (base64url)');
  if (typeof rpId !== 'string' || !RP_ID.test(rpId)) throw invalidInput(`${field}.rpId`, 'a host name');
  if (!Array.isArray(transports) || transports.length > 8 || !transports.every((t) => typeof t === 'string' && /^[a-z-]{1,32}$/.test(t)))
    throw invalidInput(`${field}.transports`, 'at most 8 transport names');
  return { credentialId, publicKey, rpId, transports: [...(transports as string[])] };
}

/** The WebAuthn challenge of a statement: SHA-256 of the exact bytes a key-file admin signs. */
export function adminPasskeyChallenge(label: typeof PROPOSE_LABEL | typeof APPROVE_LABEL, statement: AdminStatement): Uint8Array {
  return new Uint8Array(createHash('sha256').update(adminMessage(label, statement)).digest());
}

function signatureInvalid(reason: string): CustosError {
  return new CustosError('admin_signature_invalid', `the admin passkey's assertion does not verify over this proposal: ${reason}`, {
    details: { field: 'signature', reason },
  });
}

/** The stored form of an assertion (proposal_approvals.signature): canonical JSON of its four fields. */
function storedForm(id: string, response: Record<string, unknown>): string {
  return canonicalJson({
    id,
    authenticatorData: response.authenticatorData,
    clientDataJSON: response.clientDataJSON,
    signature: response.signature,
  });
}

/**
 * Verifies a passkey admin's assertion over `challenge` (adminPasskeyChallenge or a login's):
 * from its credential, on this origin and rpID, with user verification, not made inside a frame,
 * and (with `counter`) a signature counter above the stored one when either is non-zero
 * (passkey_counter_invalid). Returns the new counter and the stored form. A refusal of the
 * signature or challenge is admin_signature_invalid; a malformed answer invalid_input.
 */
export async function verifyAdminAssertion({
  credential,
  proof,
  challenge,
  settings,
  counter,
}: {
  credential: AdminPasskeyCredential;
  proof: unknown;
  challenge: Uint8Array;
  settings: AdminPasskeySettings | undefined;
  counter: number;
}): Promise<{ newCounter: number; stored: string }> {
  if (settings === undefined) throw new CustosError('passkeys_unavailable', 'this signer was started without a public URL: no passkey can be used', {});
  const { id, response } = assertResponseShape(proof, ['clientDataJSON', 'authenticatorData', 'signature']);
  // The credential the admin set names, and none other (constant data: no secret compared).
  if (id !== credential.credentialId) throw signatureInvalid('it is from another credential than this admin’s');
  if (credential.rpId !== settings.rpId)
    throw new CustosError('record_unreadable', 'the admin passkey was registered for another host than this signer’s public URL', {
      details: { field: 'signature' },
    });
  assertNotFramed(response.clientDataJSON as string);
  const webAuthn = await loadWebAuthn();
  let verified: Awaited<ReturnType<typeof verifyAuthenticationResponse>>;
  try {
    verified = await webAuthn.verifyAuthenticationResponse({
      response: { ...(proof as AuthenticationResponseJSON), clientExtensionResults: {} },
      expectedChallenge: base64urlnopad.encode(challenge),
      expectedOrigin: settings.origin,
      expectedRPID: settings.rpId,
      credential: {
        id: credential.credentialId,
        publicKey: new Uint8Array(base64urlnopad.decode(credential.publicKey)),
        counter,
        transports: credential.transports as AuthenticatorTransportFuture[],
      },
      requireUserVerification: true,
    });
  } catch (error) {
    const refusal = asPasskeyRefusal(error);
    // The counter and user-verification refusals keep their codes; a wrong challenge, origin, rpID or signature is the admin's bad signature.
    if (refusal.code === 'passkey_invalid') throw signatureInvalid(refusal.message.slice(0, 200));
    throw refusal;
  }
  if (!verified.verified) throw signatureInvalid('the signature does not verify');
  if (!verified.authenticationInfo.userVerified) throw asPasskeyRefusal(new Error(USER_NOT_VERIFIED));
  return { newCounter: verified.authenticationInfo.newCounter, stored: storedForm(id, response) };
}

/**
 * A stored assertion verified again over `challenge` (the counter is not checked again: it was,
 * when the approval was made). False for anything that does not verify: such a row never counts.
 */
export async function storedAssertionHolds(
  credential: AdminPasskeyCredential,
  stored: string,
  challenge: Uint8Array,
  settings: AdminPasskeySettings | undefined,
): Promise<boolean> {
  let fields: Record<string, unknown>;
  try {
    fields = JSON.parse(stored) as Record<string, unknown>;
  } catch {
    return false;
  }
  if (fields === null || typeof fields !== 'object') return false;
  const proof = {
    id: fields.id,
    rawId: fields.id,
    type: 'public-key',
    response: { authenticatorData: fields.authenticatorData, clientDataJSON: fields.clientDataJSON, signature: fields.signature },
  };
  try {
    await verifyAdminAssertion({ credential, proof, challenge, settings, counter: 0 });
    return true;
  } catch {
    return false;
  }
}

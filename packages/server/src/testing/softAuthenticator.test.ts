// store-independent: opens no store; runs in the SQLite pass only (scripts/test.mjs)
import assert from 'node:assert/strict';
import { createPublicKey, verify as verifySignature } from 'node:crypto';
import { describe, it } from 'node:test';
import { sha256 } from '@noble/hashes/sha2.js';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  type VerifiedRegistrationResponse,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from '@simplewebauthn/server';
import { type CborValue, cborEncode, coseEs256Key, fromBase64url, SoftAuthenticator, toBase64url } from './softAuthenticator.js';

// The soft authenticator shares no code with SimpleWebAuthn: these tests are the cross-check that
// what it makes is what a browser makes (SimpleWebAuthn's verifiers accept it), that every knob
// breaks exactly the part it names (the verifiers refuse it for that reason), and that its CBOR is
// RFC 8949's.

const RP_ID = 'localhost';
const ORIGIN = 'http://localhost:8420';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

async function registered(authenticator = new SoftAuthenticator(ORIGIN)) {
  const options = await generateRegistrationOptions({
    rpName: 'Custos',
    rpID: RP_ID,
    userName: 'alice',
    attestationType: 'none',
    authenticatorSelection: { residentKey: 'preferred', userVerification: 'required' },
  });
  const response = authenticator.create(options);
  const verified = await verifyRegistrationResponse({
    response,
    expectedChallenge: options.challenge,
    expectedOrigin: ORIGIN,
    expectedRPID: RP_ID,
    requireUserVerification: true,
  });
  assert.equal(verified.verified, true);
  return { authenticator, options, response, info: (verified as VerifiedRegistrationResponse & { registrationInfo: object }).registrationInfo };
}

async function requestOptions(credentialId: string) {
  return generateAuthenticationOptions({ rpID: RP_ID, allowCredentials: [{ id: credentialId }], userVerification: 'required' });
}

describe('SoftAuthenticator: CBOR (RFC 8949 Appendix A vectors)', () => {
  const vectors: Array<[CborValue, string]> = [
    [0, '00'],
    [23, '17'],
    [24, '1818'],
    [100, '1864'],
    [1000, '1903e8'],
    [1_000_000, '1a000f4240'],
    [1_000_000_000_000, '1b000000e8d4a51000'],
    [-1, '20'],
    [-10, '29'],
    [-100, '3863'],
    [-1000, '3903e7'],
    [new Uint8Array(0), '40'],
    [Uint8Array.of(1, 2, 3, 4), '4401020304'],
    ['', '60'],
    ['a', '6161'],
    ['IETF', '6449455446'],
    ['\u00fc', '62c3bc'],
    ['\u6c34', '63e6b0b4'],
    [[], '80'],
    [[1, 2, 3], '83010203'],
    [[1, [2, 3], [4, 5]], '8301820203820405'],
    [new Map(), 'a0'],
    [
      new Map([
        [1, 2],
        [3, 4],
      ]),
      'a201020304',
    ],
    [
      new Map<string, CborValue>([
        ['a', 1],
        ['b', [2, 3]],
      ]),
      'a26161016162820203',
    ],
  ];
  for (const [value, expected] of vectors)
    it(`encodes ${expected}`, () => {
      assert.equal(hex(cborEncode(value)), expected);
    });

  it('sorts map keys by their encoded bytes (deterministic encoding), whatever the insertion order', () => {
    const shuffled = new Map<number | string, CborValue>([
      ['authData', 1],
      [-3, 2],
      ['fmt', 3],
      [1, 4],
      [-1, 5],
      ['attStmt', 6],
      [3, 7],
    ]);
    // 1, 3, -1, -3, then "fmt" (63…), "attStmt" (67…), "authData" (68…).
    assert.equal(hex(cborEncode(shuffled)), `a7${'0104'}${'0307'}${'2005'}${'2202'}${'63666d7403'}${'6761747453746d7406'}${'68617574684461746101'}`);
  });

  it('refuses what it cannot encode exactly: fractions and integers beyond the safe range', () => {
    assert.throws(() => cborEncode(1.5), /not an integer/);
    assert.throws(() => cborEncode(2 ** 53), /not an integer/);
  });

  it('a COSE EC2 key: kty 2, alg -7, crv 1, x and y of 32 bytes, in canonical order', () => {
    const point = new Uint8Array(65);
    point[0] = 4;
    point.fill(0xaa, 1, 33);
    point.fill(0xbb, 33, 65);
    assert.equal(hex(coseEs256Key(point)), `a5010203262001215820${'aa'.repeat(32)}225820${'bb'.repeat(32)}`);
    assert.throws(() => coseEs256Key(point.subarray(0, 33)), /65 bytes/);
  });
});

describe('SoftAuthenticator against @simplewebauthn/server (the cross-check)', () => {
  it('registration verifies: attestation none, AAGUID zero, its COSE key, counter 0, user verified, the rpID and origin', async () => {
    const { authenticator, response, info } = await registered();
    const [credential] = authenticator.credentials;
    assert.ok(credential);
    assert.equal(info.fmt, 'none');
    assert.equal(info.aaguid, '00000000-0000-0000-0000-000000000000');
    assert.equal(info.credential.id, response.id);
    assert.equal(info.credential.id, credential.id);
    assert.equal(info.credential.counter, 0);
    assert.equal(info.userVerified, true);
    assert.equal(info.origin, ORIGIN);
    assert.equal(info.rpID, RP_ID);
    assert.equal(hex(info.credential.publicKey), hex(coseEs256Key(credential.publicKey)));
    assert.deepEqual(info.credential.transports, ['internal']);
  });

  it('the bytes as the specification lays them out: rpIdHash, flags UP|UV|AT, counter, client data, the SPKI', async () => {
    const { authenticator, options, response } = await registered();
    const [credential] = authenticator.credentials;
    assert.ok(credential);
    const authData = fromBase64url(response.response.authenticatorData);
    assert.equal(hex(authData.subarray(0, 32)), hex(sha256(new TextEncoder().encode(RP_ID))));
    assert.equal(authData[32], 0x45, 'UP | UV | AT');
    assert.equal(hex(authData.subarray(33, 37)), '00000000');
    assert.equal(hex(authData.subarray(37, 53)), '00'.repeat(16), 'AAGUID zero');
    const idLength = ((authData[53] as number) << 8) | (authData[54] as number);
    assert.equal(hex(authData.subarray(55, 55 + idLength)), hex(fromBase64url(credential.id)));
    assert.equal(hex(authData.subarray(55 + idLength)), hex(coseEs256Key(credential.publicKey)));
    // The attestation object: { fmt: "none", attStmt: {}, authData }.
    assert.equal(
      hex(fromBase64url(response.response.attestationObject)),
      hex(
        cborEncode(
          new Map<string, CborValue>([
            ['fmt', 'none'],
            ['attStmt', new Map()],
            ['authData', authData],
          ]),
        ),
      ),
    );
    assert.equal(
      new TextDecoder().decode(fromBase64url(response.response.clientDataJSON)),
      `{"type":"webauthn.create","challenge":"${options.challenge}","origin":"${ORIGIN}","crossOrigin":false}`,
    );
    // The SPKI a browser adds is the same key: node's crypto reads it.
    const spki = createPublicKey({ key: Buffer.from(fromBase64url(response.response.publicKey)), format: 'der', type: 'spki' });
    assert.equal(spki.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  });

  it('authentication verifies, with the counter increasing and user verification; node:crypto verifies the DER signature too', async () => {
    const { authenticator, response: registration, info } = await registered();
    const credential = { ...info.credential };
    for (const expectedCounter of [1, 2, 3]) {
      const options = await requestOptions(registration.id);
      const response = authenticator.get(options);
      const verified = await verifyAuthenticationResponse({
        response,
        expectedChallenge: options.challenge,
        expectedOrigin: ORIGIN,
        expectedRPID: RP_ID,
        credential,
        requireUserVerification: true,
      });
      assert.equal(verified.verified, true);
      assert.equal(verified.authenticationInfo.newCounter, expectedCounter);
      assert.equal(verified.authenticationInfo.userVerified, true);
      credential.counter = verified.authenticationInfo.newCounter;
      assert.equal(response.response.userHandle, (authenticator.credentials[0] as { userHandle: string }).userHandle);
      const authData = fromBase64url(response.response.authenticatorData);
      assert.equal(authData.length, 37, 'no attested credential data in an assertion');
      assert.equal(authData[32], 0x05, 'UP | UV');
      const signed = Buffer.concat([authData, sha256(fromBase64url(response.response.clientDataJSON))]);
      const spki = createPublicKey({ key: Buffer.from(fromBase64url(registration.response.publicKey)), format: 'der', type: 'spki' });
      assert.equal(verifySignature('sha256', signed, spki, Buffer.from(fromBase64url(response.response.signature))), true);
      assert.equal(
        new TextDecoder().decode(fromBase64url(response.response.clientDataJSON)),
        `{"type":"webauthn.get","challenge":"${options.challenge}","origin":"${ORIGIN}","crossOrigin":false}`,
      );
    }
  });

  it('a counter that stays 0 on both sides is accepted (authenticators that keep none)', async () => {
    const { authenticator, response: registration, info } = await registered();
    for (let i = 0; i < 2; i++) {
      const options = await requestOptions(registration.id);
      const verified = await verifyAuthenticationResponse({
        response: authenticator.get(options, { counter: 0 }),
        expectedChallenge: options.challenge,
        expectedOrigin: ORIGIN,
        expectedRPID: RP_ID,
        credential: info.credential,
        requireUserVerification: true,
      });
      assert.equal(verified.authenticationInfo.newCounter, 0);
    }
  });

  it('every knob breaks what it names: the verifier refuses each for that reason', async () => {
    const { authenticator, response: registration, info } = await registered();
    const other = new SoftAuthenticator(ORIGIN);
    await registered(other);
    const otherKey = (other.credentials[0] as { secretKey: Uint8Array }).secretKey;
    const attempts: Array<[string, Parameters<SoftAuthenticator['get']>[1], RegExp]> = [
      ['another origin', { origin: 'http://localhost:8421' }, /origin/],
      ['another rpID', { rpId: 'example.com' }, /RP ID/i],
      ['no user verification', { userVerified: false }, /user could not be verified/],
      ['no user presence', { userPresent: false }, /not present/],
      ['another challenge', { challenge: toBase64url(new Uint8Array(32).fill(7)) }, /challenge/],
      ['another type', { type: 'webauthn.create' }, /type/],
    ];
    for (const [label, knobs, message] of attempts) {
      const options = await requestOptions(registration.id);
      await assert.rejects(
        verifyAuthenticationResponse({
          response: authenticator.get(options, knobs),
          expectedChallenge: options.challenge,
          expectedOrigin: ORIGIN,
          expectedRPID: RP_ID,
          credential: info.credential,
          requireUserVerification: true,
        }),
        message,
        label,
      );
    }
    // Another key under the same credential id: the signature does not verify.
    const options = await requestOptions(registration.id);
    const forged = await verifyAuthenticationResponse({
      response: authenticator.get(options, { signWith: otherKey }),
      expectedChallenge: options.challenge,
      expectedOrigin: ORIGIN,
      expectedRPID: RP_ID,
      credential: info.credential,
      requireUserVerification: true,
    });
    assert.equal(forged.verified, false);
    // A counter rolled back below the stored one.
    const rollback = await requestOptions(registration.id);
    await assert.rejects(
      verifyAuthenticationResponse({
        response: authenticator.get(rollback, { counter: 4 }),
        expectedChallenge: rollback.challenge,
        expectedOrigin: ORIGIN,
        expectedRPID: RP_ID,
        credential: { ...info.credential, counter: 5 },
        requireUserVerification: true,
      }),
      /counter/,
    );
    assert.equal(authenticator.credential(registration.id).counter, 4, 'the counter knob sets the credential’s counter');
  });

  it('registration knobs: no user verification is refused; crossOrigin and topOrigin appear in the client data', async () => {
    const authenticator = new SoftAuthenticator(ORIGIN);
    const options = await generateRegistrationOptions({ rpName: 'Custos', rpID: RP_ID, userName: 'bob', attestationType: 'none' });
    await assert.rejects(
      verifyRegistrationResponse({
        response: authenticator.create(options, { userVerified: false }),
        expectedChallenge: options.challenge,
        expectedOrigin: ORIGIN,
        expectedRPID: RP_ID,
        requireUserVerification: true,
      }),
      /user could not be verified/,
    );
    const framed = authenticator.create(options, { crossOrigin: true, topOrigin: 'https://evil.example' });
    assert.deepEqual(JSON.parse(new TextDecoder().decode(fromBase64url(framed.response.clientDataJSON))), {
      type: 'webauthn.create',
      challenge: options.challenge,
      origin: ORIGIN,
      crossOrigin: true,
      topOrigin: 'https://evil.example',
    });
  });

  it('like a browser: an excluded credential is not registered again unless told to; reuse registers the same id and key', async () => {
    const { authenticator, response } = await registered();
    const options = await generateRegistrationOptions({
      rpName: 'Custos',
      rpID: RP_ID,
      userName: 'alice',
      attestationType: 'none',
      excludeCredentials: [{ id: response.id }],
    });
    assert.throws(() => authenticator.create(options), /InvalidStateError/);
    const again = authenticator.create(options, { reuse: response.id, ignoreExclude: true });
    assert.equal(again.id, response.id);
    assert.equal(again.response.publicKey, response.response.publicKey);
    const verified = await verifyRegistrationResponse({ response: again, expectedChallenge: options.challenge, expectedOrigin: ORIGIN, expectedRPID: RP_ID });
    assert.equal(verified.registrationInfo?.credential.id, response.id);
  });

  it('refuses options without ES256, and an assertion when no held credential is allowed', async () => {
    const authenticator = new SoftAuthenticator(ORIGIN);
    const options = await generateRegistrationOptions({ rpName: 'Custos', rpID: RP_ID, userName: 'carol', supportedAlgorithmIDs: [-257] });
    assert.throws(() => authenticator.create(options), /NotSupportedError/);
    assert.throws(
      () => authenticator.get({ challenge: 'AAAA', rpId: RP_ID, allowCredentials: [{ id: 'AAAAAAAAAAAAAAAAAAAAAA', type: 'public-key' }] }),
      /NotAllowedError/,
    );
  });
});

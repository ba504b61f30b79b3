import { parseOtpauthUri } from './parseOtpauthUri.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { base32nopad } from '@scure/base';
import { buildOtpauthUri } from './buildOtpauthUri.js';

const secret = new TextEncoder().encode('12345678901234567890');

describe('buildOtpauthUri', () => {
  it('writes the key URI with every parameter, the secret in base32 without padding', () => {
    const uri = buildOtpauthUri({ issuer: 'Custos', accountName: 'treasury', secret });
    assert.equal(uri, 'otpauth://totp/Custos:treasury?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Custos&algorithm=SHA1&digits=6&period=30');
  });

  it('leaves no base32 padding for a secret whose length would need it', () => {
    // 16 bytes = 128 bits: padded base32 would end in '======'
    const uri = buildOtpauthUri({ issuer: 'Custos', accountName: 'a', secret: new Uint8Array(16).fill(7) });
    const url = new URL(uri);
    const encoded = url.searchParams.get('secret');
    assert.ok(encoded);
    assert.ok(!encoded.includes('='));
    assert.ok(!uri.includes('%3D'));
    assert.deepEqual(base32nopad.decode(encoded), new Uint8Array(16).fill(7));
  });

  it('percent-encodes label parts and values; the label prefix equals the issuer parameter', () => {
    const uri = buildOtpauthUri({ issuer: 'ACME Co & Sons', accountName: 'alice@example.com/ops?x', secret });
    const url = new URL(uri);
    assert.equal(url.protocol, 'otpauth:');
    assert.equal(url.host, 'totp');
    const [prefix, account, ...more] = url.pathname.slice(1).split(':');
    assert.equal(more.length, 0);
    assert.equal(prefix, 'ACME%20Co%20%26%20Sons');
    assert.equal(account, 'alice%40example.com%2Fops%3Fx');
    assert.equal(decodeURIComponent(prefix ?? ''), url.searchParams.get('issuer'));
    assert.equal(url.searchParams.get('issuer'), 'ACME Co & Sons');
    // spaces as %20, not '+' (Google Authenticator reads '+' literally in the label)
    assert.ok(!uri.includes('+'));
    assert.deepEqual([...url.searchParams.keys()], ['secret', 'issuer', 'algorithm', 'digits', 'period']);
    assert.equal(url.searchParams.get('algorithm'), 'SHA1');
    assert.equal(url.searchParams.get('digits'), '6');
    assert.equal(url.searchParams.get('period'), '30');
  });

  it("refuses an issuer containing ':' with invalid_input naming it", () => {
    assert.throws(() => buildOtpauthUri({ issuer: 'Cus:tos', accountName: 'a', secret }), {
      code: 'invalid_input',
      details: { field: 'issuer' },
    });
  });

  it("percent-encodes a ':' in the account name (wallet names may hold one) and round-trips it", () => {
    const uri = buildOtpauthUri({ issuer: 'Custos', accountName: 'acme:alice', secret });
    assert.ok(uri.startsWith('otpauth://totp/Custos:acme%3Aalice?'), uri.slice(0, 40));
    assert.equal(parseOtpauthUri(uri).accountName, 'acme:alice');
  });

  it('refuses empty or ill-formed names and a short secret', () => {
    assert.throws(() => buildOtpauthUri({ issuer: '', accountName: 'a', secret }), { details: { field: 'issuer' } });
    assert.throws(() => buildOtpauthUri({ issuer: 'Custos', accountName: '', secret }), {
      details: { field: 'accountName' },
    });
    assert.throws(() => buildOtpauthUri({ issuer: 'Custos', accountName: '\uD800', secret }), {
      code: 'invalid_input',
      details: { field: 'accountName' },
    });
    assert.throws(() => buildOtpauthUri({ issuer: 'Custos', accountName: 'a', secret: new Uint8Array(15) }), {
      code: 'invalid_input',
      details: { field: 'secret' },
    });
  });

  it('does not put the secret in an error message', () => {
    assert.throws(
      () => buildOtpauthUri({ issuer: 'x:y', accountName: 'a', secret }),
      (error: unknown) => error instanceof Error && !error.message.includes(base32nopad.encode(secret)),
    );
  });
});

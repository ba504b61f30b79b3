import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { base32nopad } from '@scure/base';
import fc from 'fast-check';
import { CustosError } from '../errors.js';
import { buildOtpauthUri } from './buildOtpauthUri.js';
import { generateTotp } from './generateTotp.js';
import { parseOtpauthUri } from './parseOtpauthUri.js';

const secret = new TextEncoder().encode('12345678901234567890');
const B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const good = `otpauth://totp/Custos:treasury?secret=${B32}&issuer=Custos&algorithm=SHA1&digits=6&period=30`;

function assertRefused(uri: unknown) {
  assert.throws(
    () => parseOtpauthUri(uri as string),
    (error: unknown) => {
      assert.ok(error instanceof CustosError);
      assert.equal(error.code, 'invalid_input');
      assert.deepEqual(error.details, { field: 'uri' });
      // the URI holds the secret: never quoted back
      assert.ok(!error.message.includes(B32.slice(0, 8)));
      return true;
    },
    String(uri),
  );
}

describe('parseOtpauthUri', () => {
  it('round-trips buildOtpauthUri', () => {
    const uri = buildOtpauthUri({ issuer: 'ACME Co & Sons', accountName: 'alice@example.com', secret });
    const parsed = parseOtpauthUri(uri);
    assert.deepEqual(parsed, {
      issuer: 'ACME Co & Sons',
      accountName: 'alice@example.com',
      secret,
      algorithm: 'SHA1',
      digits: 6,
      period: 30,
    });
  });

  it('decodes the base32 secret to the same 20 bytes, which give the same codes', () => {
    const original = Uint8Array.from({ length: 20 }, (_, i) => (i * 37 + 11) & 0xff);
    const parsed = parseOtpauthUri(buildOtpauthUri({ issuer: 'Custos', accountName: 'w1', secret: original }));
    assert.equal(parsed.secret.length, 20);
    assert.deepEqual(parsed.secret, original);
    for (const t of [0, 59, 1_111_111_109, 2_000_000_000]) {
      assert.equal(generateTotp(parsed.secret, t, { period: parsed.period, digits: parsed.digits, algorithm: parsed.algorithm }), generateTotp(original, t));
    }
  });

  it('reads the optional parameters and their defaults', () => {
    assert.deepEqual(parseOtpauthUri(`otpauth://totp/Custos:t?issuer=Custos&secret=${B32}`), {
      issuer: 'Custos',
      accountName: 't',
      secret,
      algorithm: 'SHA1',
      digits: 6,
      period: 30,
    });
    const parsed = parseOtpauthUri(`otpauth://totp/Custos:t?secret=${B32}&issuer=Custos&algorithm=SHA512&digits=8&period=60`);
    assert.equal(parsed.algorithm, 'SHA512');
    assert.equal(parsed.digits, 8);
    assert.equal(parsed.period, 60);
  });

  const refused: [string, unknown][] = [
    ['not a string', 42],
    ['hotp type', good.replace('totp', 'hotp')],
    ['other scheme', good.replace('otpauth', 'https')],
    ['upper-case scheme', good.replace('otpauth', 'OTPAUTH')],
    ['no query', 'otpauth://totp/Custos:treasury'],
    ['a fragment', `${good}#x`],
    ['no issuer prefix in the label', good.replace('Custos:treasury', 'treasury')],
    ['two colons in the label', good.replace('Custos:treasury', 'Custos:tre:asury')],
    ['an encoded colon in the issuer', good.replace('Custos:treasury', 'Cus%3Atos:treasury')],
    ['an empty account name', good.replace('Custos:treasury', 'Custos:')],
    ['bad percent-encoding', good.replace('treasury', 'tre%ZZsury')],
    ['differing issuer parameter', good.replace('issuer=Custos', 'issuer=Evil')],
    ['no issuer parameter', good.replace('&issuer=Custos', '')],
    ['no secret', good.replace(`secret=${B32}&`, '')],
    ['empty secret', good.replace(`secret=${B32}`, 'secret=')],
    ['padded secret', good.replace(B32, 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGE======')],
    ['lower-case secret', good.replace(B32, B32.toLowerCase())],
    // 16 bytes take 26 characters, the last 2 bits unused: ...GY is canonical (accepted below), ...GZ is not
    ['non-canonical base32 (non-zero trailing bits)', good.replace(B32, 'GEZDGNBVGY3TQOJQGEZDGNBVGZ')],
    ['a 10-byte secret', good.replace(B32, 'GEZDGNBVGY3TQOJQ')],
    ['a repeated parameter', `${good}&digits=6`],
    ['an unknown parameter', `${good}&image=x`],
    ['a parameter without value', `${good}&`],
    ['algorithm MD5', good.replace('SHA1', 'MD5')],
    ['lower-case algorithm', good.replace('SHA1', 'sha1')],
    ['digits 9', good.replace('digits=6', 'digits=9')],
    ['digits 06', good.replace('digits=6', 'digits=06')],
    ['period 0', good.replace('period=30', 'period=0')],
    ['period 1e1', good.replace('period=30', 'period=1e1')],
    ['period 030', good.replace('period=30', 'period=030')],
    ['period above a day', good.replace('period=30', 'period=86401')],
  ];
  for (const [label, uri] of refused) {
    it(`refuses ${label} with invalid_input naming uri`, () => assertRefused(uri));
  }

  it('accepts the reference URI (so the refusals above are about their one change)', () => {
    assert.deepEqual(parseOtpauthUri(good).secret, secret);
    assert.deepEqual(parseOtpauthUri(good.replace(B32, 'GEZDGNBVGY3TQOJQGEZDGNBVGY')).secret, new TextEncoder().encode('1234567890123456'));
  });

  it('round-trips any issuer without ":" and any account name (property)', () => {
    const name = fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' }).filter((s) => !s.includes(':'));
    const account = fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' });
    fc.assert(
      fc.property(name, account, fc.uint8Array({ minLength: 16, maxLength: 64 }), (issuer, accountName, bytes) => {
        const parsed = parseOtpauthUri(buildOtpauthUri({ issuer, accountName, secret: bytes }));
        assert.equal(parsed.issuer, issuer);
        assert.equal(parsed.accountName, accountName);
        assert.deepEqual(parsed.secret, bytes);
        assert.equal(base32nopad.encode(parsed.secret), base32nopad.encode(bytes));
      }),
      { numRuns: 300 },
    );
  });

  it('throws nothing but invalid_input naming uri on arbitrary text (property)', () => {
    const mutated = fc
      .tuple(fc.nat({ max: good.length }), fc.nat({ max: 4 }), fc.string({ maxLength: 6 }))
      .map(([at, cut, insert]) => good.slice(0, at) + insert + good.slice(at + cut));
    fc.assert(
      fc.property(fc.oneof(fc.string(), mutated), (uri) => {
        try {
          parseOtpauthUri(uri);
        } catch (error) {
          assert.ok(error instanceof CustosError);
          assert.equal(error.code, 'invalid_input');
          assert.deepEqual(error.details, { field: 'uri' });
        }
      }),
      { numRuns: 1000 },
    );
  });
});

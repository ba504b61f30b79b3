import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { CustosError } from '../errors.js';
import { toHex } from '../util/hex.js';
import { MAX_MESSAGE_BYTES, prepareMessage } from './prepareMessage.js';

const FROM = '0x13767Ad8c74C0E68686aAa34d40aA710DcCd684A';

/** EIP-191 version 0x45, computed here by hand: keccak256("\x19Ethereum Signed Message:\n" + len + bytes). */
function personalDigest(bytes: Uint8Array): string {
  const prefix = new TextEncoder().encode(`\x19Ethereum Signed Message:\n${bytes.length}`);
  return toHex(keccak_256(new Uint8Array([...prefix, ...bytes])));
}

test('EIP-191 digest of a text (its UTF-8 bytes) and of raw bytes', () => {
  assert.equal(toHex(prepareMessage({ text: 'hello world' }).digest), 'd9eba16ed0ecae432b71fe008c98cc872bb4cc214d3220a36f365326cf807d68');
  const text = 'ünïcødé ✓';
  assert.equal(toHex(prepareMessage({ text }).digest), personalDigest(new TextEncoder().encode(text)));
  assert.equal(toHex(prepareMessage({ raw: '0x00ff' }).digest), personalDigest(new Uint8Array([0, 255])));
  // raw bytes that happen to be UTF-8 sign the same as the text
  assert.equal(toHex(prepareMessage({ raw: '0x68656c6c6f20776f726c64' }).digest), toHex(prepareMessage({ text: 'hello world' }).digest));
});

test('the summary holds the whole message; the text line quotes it on one line', () => {
  const { summary, summaryText } = prepareMessage({ text: 'line 1\nline 2' }).summarize(FROM);
  assert.deepEqual(summary, { operation: 'message', from: FROM, encoding: 'text', byteLength: 13, text: 'line 1\nline 2' });
  assert.equal(summaryText, `Sign a message (EIP-191 personal_sign, 13 bytes of text) as ${FROM}: "line 1\\nline 2"`);
  const long = prepareMessage({ text: 'x'.repeat(1000) }).summarize(FROM);
  assert.ok(long.summaryText.endsWith('…"') && long.summaryText.length < 400);
  assert.equal((long.summary as unknown as { text: string }).text.length, 1000);
  assert.equal(prepareMessage({ raw: '0xabcd' }).summarize(FROM).summaryText, `Sign a message (EIP-191 personal_sign, 2 raw bytes) as ${FROM}: 0xabcd`);
});

test('refuses anything but exactly one of text, raw', () => {
  for (const [input, field] of [
    [{}, 'message'],
    [{ text: 'a', raw: '0x' }, 'message'],
    [{ text: 1 }, 'message.text'],
    [{ text: '\ud800' }, 'message.text'],
    [{ raw: '0x1' }, 'message.raw'],
    [{ raw: 'abcd' }, 'message.raw'],
    [{ hash: '0x' }, 'message.hash'],
    ['hello', 'message'],
  ] as const) {
    assert.throws(
      () => prepareMessage(input),
      (e: unknown) => e instanceof CustosError && e.code === 'invalid_input' && e.details.field === field,
      JSON.stringify(input),
    );
  }
});

test('issue 9: a message holds at most MAX_MESSAGE_BYTES (text as UTF-8, or raw)', () => {
  const refusal = (field: string) => (e: unknown) => e instanceof CustosError && e.code === 'invalid_input' && e.details.field === field;
  prepareMessage({ text: 'a'.repeat(MAX_MESSAGE_BYTES) });
  prepareMessage({ raw: `0x${'ff'.repeat(MAX_MESSAGE_BYTES)}` });
  assert.throws(() => prepareMessage({ text: 'a'.repeat(MAX_MESSAGE_BYTES + 1) }), refusal('message.text'));
  // counted in UTF-8 bytes: 2 bytes each
  assert.throws(() => prepareMessage({ text: 'ü'.repeat(MAX_MESSAGE_BYTES / 2 + 1) }), {
    message: `message.text: expected at most ${MAX_MESSAGE_BYTES} bytes (UTF-8), got ${MAX_MESSAGE_BYTES + 2} bytes`,
  });
  assert.throws(() => prepareMessage({ raw: `0x${'ff'.repeat(MAX_MESSAGE_BYTES + 1)}` }), refusal('message.raw'));
});

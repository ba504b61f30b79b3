import { hashMessage } from 'viem/utils';
import { CustosError, invalidInput } from '../errors.js';
import { assertFields } from './assertFields.js';
import { assertHexData } from './assertHexData.js';
import { type EthereumSignatureResult, toEthereumSignature } from './signatureResult.js';
import type { Hex, PreparedOperation } from './types.js';

/** Longest text shown in the one-line summary; the structured summary holds the whole message. */
const TEXT_PREVIEW = 200;
/** The most a message may hold: 64 KiB of text (UTF-8) or raw bytes (published in docs/operations-ethereum.md). */
export const MAX_MESSAGE_BYTES = 64 * 1024;

/**
 * EIP-191 personal_sign (version 0x45): digest = keccak-256("\x19Ethereum Signed Message:\n" ‖
 * len ‖ message), of the UTF-8 bytes of `text` or of the `raw` bytes.
 */
export function prepareMessage(input: unknown): PreparedOperation<EthereumSignatureResult> {
  const fields = assertFields(input, 'message', ['text', 'raw']);
  const hasText = fields.text !== undefined;
  const hasRaw = fields.raw !== undefined;
  if (hasText === hasRaw) throw new CustosError('invalid_input', 'message: expected exactly one of text, raw', { details: { field: 'message' } });
  let canonical: { text: string } | { raw: Hex };
  if (hasText) {
    if (typeof fields.text !== 'string') throw invalidInput('message.text', 'a string', typeof fields.text);
    if (!fields.text.isWellFormed()) throw invalidInput('message.text', 'well-formed Unicode (no lone surrogates)');
    const bytes = Buffer.byteLength(fields.text, 'utf8');
    if (bytes > MAX_MESSAGE_BYTES) throw invalidInput('message.text', `at most ${MAX_MESSAGE_BYTES} bytes (UTF-8)`, `${bytes} bytes`);
    canonical = { text: fields.text };
  } else {
    if (typeof fields.raw === 'string' && fields.raw.length > 2 + 2 * MAX_MESSAGE_BYTES)
      throw invalidInput('message.raw', `at most ${MAX_MESSAGE_BYTES} bytes`, `${Math.floor((fields.raw.length - 2) / 2)} bytes`);
    canonical = { raw: assertHexData(fields.raw, 'message.raw') };
  }
  const digest = 'text' in canonical ? hashMessage(canonical.text) : hashMessage({ raw: canonical.raw });
  const byteLength = 'text' in canonical ? Buffer.byteLength(canonical.text, 'utf8') : (canonical.raw.length - 2) / 2;
  return {
    action: 'sign.message',
    canonical,
    digest: Uint8Array.from(Buffer.from(digest.slice(2), 'hex')),
    summarize: (from) => {
      if ('text' in canonical) {
        const preview = canonical.text.length > TEXT_PREVIEW ? `${canonical.text.slice(0, TEXT_PREVIEW)}…` : canonical.text;
        return {
          summary: { operation: 'message', from, encoding: 'text', byteLength, text: canonical.text },
          // JSON quoting keeps it on one line and shows control characters
          summaryText: `Sign a message (EIP-191 personal_sign, ${byteLength} bytes of text) as ${from}: ${JSON.stringify(preview)}`,
        };
      }
      const preview = canonical.raw.length > 2 + 2 * 64 ? `${canonical.raw.slice(0, 2 + 2 * 64)}…` : canonical.raw;
      return {
        summary: { operation: 'message', from, encoding: 'raw', byteLength, raw: canonical.raw },
        summaryText: `Sign a message (EIP-191 personal_sign, ${byteLength} raw bytes) as ${from}: ${preview}`,
      };
    },
    finish: (signature) => toEthereumSignature(signature, digest),
  };
}

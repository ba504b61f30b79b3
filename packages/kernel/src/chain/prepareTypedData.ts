import { CustosError } from '../errors.js';
import { MAX_UINT256 } from './assertQuantity.js';
import { chainText, describeChain } from './describeChain.js';
import { hashTypedData, type TypedDataHashObserver } from './hashTypedData.js';
import { parseTypedData, type ParsedTypedData } from './parseTypedData.js';
import { type EthereumSignatureResult, toEthereumSignature } from './signatureResult.js';
import type { Hex, PreparedOperation } from './types.js';

/**
 * EIP-712: digest = keccak-256(0x19 0x01 ‖ domainSeparator ‖ hashStruct(message)), computed by
 * hashTypedData (each type hash once per request) over the validated, normalised data. The
 * observer lets a test count the type-hash computations.
 */
export function prepareTypedData(input: unknown, observer?: TypedDataHashObserver): PreparedOperation<EthereumSignatureResult> {
  const data = parseTypedData(input);
  let digest: Hex;
  try {
    digest = hashTypedData(data, observer);
  } catch (error) {
    // every rule the encoding relies on is checked above with the field named; this is a last line
    throw new CustosError('invalid_input', 'typedData: refused by EIP-712 validation', { details: { field: 'typedData' }, cause: error });
  }
  const canonical = toJsonSafe({ domain: data.domain, types: data.types, primaryType: data.primaryType, message: data.message }) as Record<string, unknown>;
  return {
    action: 'sign.typedData',
    canonical,
    digest: Uint8Array.from(Buffer.from(digest.slice(2), 'hex')),
    summarize: (from) => summarizeTypedData(data, canonical, from),
    finish: (signature) => toEthereumSignature(signature, digest),
  };
}

function summarizeTypedData(data: ParsedTypedData, canonical: Record<string, unknown>, from: Hex) {
  const domain = canonical.domain as Record<string, unknown>;
  const chainId = data.domain.chainId as bigint | undefined;
  const chain = chainId !== undefined && chainId <= BigInt(Number.MAX_SAFE_INTEGER) ? describeChain(Number(chainId)) : undefined;
  const summary: Record<string, unknown> = { operation: 'typedData', from, domain, primaryType: data.primaryType, message: canonical.message };
  if (chain !== undefined) summary.chain = chain;
  const parts = [`Sign EIP-712 ${data.primaryType} as ${from}`];
  const named = [
    typeof domain.name === 'string' ? JSON.stringify(domain.name) : undefined,
    typeof domain.version === 'string' ? `version ${JSON.stringify(domain.version)}` : undefined,
  ]
    .filter((s) => s !== undefined)
    .join(' ');
  parts.push(`for ${named === '' ? 'an unnamed domain' : named}`);
  if (domain.verifyingContract !== undefined) parts.push(`contract ${domain.verifyingContract}`);
  if (chain !== undefined) parts.push(`on ${chainText(chain)}`);
  else if (domain.chainId !== undefined) parts.push(`on chain ${domain.chainId}`);
  else parts.push('on any chain (the domain names none)');
  // EIP-2612 permit: an off-chain ERC-20 approval, as dangerous as approve()
  const m = data.message;
  if (data.primaryType === 'Permit' && typeof m.spender === 'string' && typeof m.value === 'bigint') {
    const unlimited = m.value === MAX_UINT256;
    summary.permit = { token: domain.verifyingContract ?? null, spender: m.spender, amount: m.value.toString(), unlimited, deadline: String(m.deadline ?? '') };
    parts.push(`ERC-20 permit: spender ${m.spender} may spend ${unlimited ? 'UNLIMITED (max uint256)' : m.value.toString()} base units`);
  }
  return { summary: summary as { operation: 'typedData'; from: Hex } & Record<string, unknown>, summaryText: parts.join(', ') };
}

/** bigints as decimal strings, so that the value is JSON (opHash, audit, response). */
function toJsonSafe(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(toJsonSafe);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) Object.defineProperty(out, k, { value: toJsonSafe(v), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return value;
}

import { toHex } from '../util/hex.js';
import type { Hex, OperationSignature } from './types.js';

/** A 65-byte Ethereum signature as personal_sign / eth_signTypedData return it. */
export interface EthereumSignatureResult {
  /** 0x r ‖ s ‖ v, 65 bytes, v = 27 + yParity. */
  signature: Hex;
  r: Hex;
  s: Hex;
  yParity: 0 | 1;
  /** The digest that was signed. */
  digest: Hex;
}

export function toEthereumSignature(sig: OperationSignature, digest: Hex): EthereumSignatureResult {
  const r = toHex(sig.r);
  const s = toHex(sig.s);
  const v = (27 + sig.yParity).toString(16);
  return { signature: `0x${r}${s}${v}`, r: `0x${r}`, s: `0x${s}`, yParity: sig.yParity, digest };
}

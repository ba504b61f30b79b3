import {
  AbstractSigner,
  type Authorization,
  type AuthorizationRequest,
  copyRequest,
  getAddress,
  hexlify,
  type Provider,
  resolveAddress,
  resolveProperties,
  Signature,
  Transaction,
  type TransactionRequest,
  type TypedDataDomain,
  TypedDataEncoder,
  type TypedDataField,
  verifyAuthorization,
  verifyMessage,
  verifyTypedData,
} from 'ethers';
import type { CustosClient } from './client.js';
import { CustosInputError, unexpectedAnswer } from './errors.js';
import type { CodeSource } from './resolveCode.js';
import { type ApprovalCallback, assertOneConsent, resolveConsent } from './resolveConsent.js';
import type { Address, Hex, TransactionRequest as CustosTransaction } from './types.js';

export type { CodeRequest, CodeSource } from './resolveCode.js';
export type { ApprovalCallback, ApprovalPrompt } from './resolveConsent.js';

export interface CustosSignerOptions {
  walletName: string;
  keyIndex: number;
  /** The second-factor code, or a callback asked once per signature (a code is single use). */
  code?: CodeSource;
  /**
   * Instead of `code`: the owner approves each operation on the kernel's page. Called once per
   * signature with the link for the owner (`approveUrl`) and the summary; the signer then waits for
   * the decision and signs with the approval (a rejection throws approval_rejected, and so on).
   */
  approval?: ApprovalCallback;
}

const TYPE_NAMES: Record<number, CustosTransaction['type']> = { 0: 'legacy', 1: 'eip2930', 2: 'eip1559', 4: 'eip7702' };

/**
 * An ethers v6 signer whose key stays in Custos. `sendTransaction` populates the transaction
 * through the connected provider (nonce, gas, fees) and signs it with one request to Custos;
 * `signMessage`, `signTypedData` and `authorize` (EIP-7702) likewise. The address comes from
 * `GET /v1/keys` (once, cached). Every answer is checked: the signature must recover to this
 * signer's address and a signed transaction must be exactly the one asked for.
 */
export class CustosSigner extends AbstractSigner {
  readonly #client: CustosClient;
  readonly #options: CustosSignerOptions;
  #address: Promise<string> | undefined;

  constructor(client: CustosClient, options: CustosSignerOptions, provider: Provider | null = null) {
    super(provider);
    assertOneConsent(options);
    this.#client = client;
    this.#options = { ...options };
  }

  /** The key's checksummed address, fetched once; a failed fetch is not cached (the next call asks again). */
  override getAddress(): Promise<string> {
    if (this.#address !== undefined) return this.#address;
    return this.#remember(
      this.#client.getKey({ walletName: this.#options.walletName, keyIndex: this.#options.keyIndex }).then((key) => getAddress(key.address)),
    );
  }

  override connect(provider: Provider | null): CustosSigner {
    const signer = new CustosSigner(this.#client, this.#options, provider);
    if (this.#address !== undefined) signer.#remember(this.#address);
    return signer;
  }

  /** Caches the address promise until it rejects. */
  #remember(address: Promise<string>): Promise<string> {
    this.#address = address;
    address.catch(() => {
      if (this.#address === address) this.#address = undefined;
    });
    return address;
  }

  override async signTransaction(request: TransactionRequest): Promise<string> {
    const tx = copyRequest(request);
    const { to, from } = await resolveProperties({
      to: tx.to == null ? undefined : resolveAddress(tx.to, this),
      from: tx.from == null ? undefined : resolveAddress(tx.from, this),
    });
    if (to != null) tx.to = to;
    const address = await this.getAddress();
    if (from != null) {
      if (getAddress(from) !== address) throw new CustosInputError('transaction.from', `expected ${address}, got ${from}`);
      delete tx.from;
    }
    const btx = Transaction.from(tx as never);
    const transaction = toCustosTransaction(btx);
    const key = { walletName: this.#options.walletName, keyIndex: this.#options.keyIndex };
    const payload = { ...key, transaction };
    const signed = await this.#client.signTransaction({
      ...payload,
      ...(await resolveConsent(this.#client, this.#options, { operation: 'transaction', ...key, payload })),
    });
    btx.signature = Signature.from({ r: signed.signature.r, s: signed.signature.s, yParity: signed.signature.yParity as 0 | 1 });
    if (btx.serialized.toLowerCase() !== signed.serializedTransaction.toLowerCase())
      throw unexpectedAnswer('serializedTransaction', 'Custos returned a transaction that differs from the one requested');
    if (btx.from !== address) throw unexpectedAnswer('serializedTransaction', `the signature recovers to ${btx.from}, not ${address}`);
    return signed.serializedTransaction;
  }

  override async signMessage(message: string | Uint8Array): Promise<string> {
    const key = { walletName: this.#options.walletName, keyIndex: this.#options.keyIndex };
    const payload = { ...key, message: typeof message === 'string' ? { text: message } : { raw: hexlify(message) as Hex } };
    const signed = await this.#client.signMessage({
      ...payload,
      ...(await resolveConsent(this.#client, this.#options, { operation: 'message', ...key, payload })),
    });
    await this.#expectSigner(verifyMessage(message, signed.signature));
    return signed.signature;
  }

  override async signTypedData(domain: TypedDataDomain, types: Record<string, Array<TypedDataField>>, value: Record<string, unknown>): Promise<string> {
    // Replace ENS names in the domain and the message, as ethers' own Wallet does.
    const populated = await TypedDataEncoder.resolveNames(domain, types, value, async (name) => {
      if (this.provider === null) throw new CustosInputError('typedData', `cannot resolve the ENS name ${name} without a provider`);
      const resolved = await this.provider.resolveName(name);
      if (resolved === null) throw new CustosInputError('typedData', `the ENS name ${name} is not configured`);
      return resolved;
    });
    const { EIP712Domain: _domainType, ...messageTypes } = types;
    const d = populated.domain;
    const wireDomain: Record<string, unknown> = {};
    if (d.name != null) wireDomain.name = d.name;
    if (d.version != null) wireDomain.version = d.version;
    if (d.chainId != null) wireDomain.chainId = Number(d.chainId);
    if (d.verifyingContract != null) wireDomain.verifyingContract = d.verifyingContract;
    if (d.salt != null) wireDomain.salt = hexlify(d.salt);
    const key = { walletName: this.#options.walletName, keyIndex: this.#options.keyIndex };
    const payload = {
      ...key,
      typedData: { domain: wireDomain, types: messageTypes, primaryType: TypedDataEncoder.getPrimaryType(messageTypes), message: populated.value },
    };
    const signed = await this.#client.signTypedData({
      ...payload,
      ...(await resolveConsent(this.#client, this.#options, { operation: 'typedData', ...key, payload })),
    });
    await this.#expectSigner(verifyTypedData(populated.domain, messageTypes, populated.value, signed.signature));
    return signed.signature;
  }

  override async authorize(request: AuthorizationRequest): Promise<Authorization> {
    const auth = await this.populateAuthorization({ ...request, address: await resolveAddress(request.address, this) });
    const key = { walletName: this.#options.walletName, keyIndex: this.#options.keyIndex };
    // populateAuthorization fills both or throws; never fall back to chainId 0 (valid on every chain).
    if (auth.chainId == null) throw new CustosInputError('authorization.chainId', 'required');
    if (auth.nonce == null) throw new CustosInputError('authorization.nonce', 'required');
    const payload = {
      ...key,
      authorization: { chainId: Number(auth.chainId), address: getAddress(auth.address as string) as Address, nonce: Number(auth.nonce) },
    };
    const signed = await this.#client.signAuthorization({
      ...payload,
      ...(await resolveConsent(this.#client, this.#options, { operation: 'authorization', ...key, payload })),
    });
    const a = signed.authorization;
    const result: Authorization = {
      address: getAddress(a.address),
      nonce: BigInt(a.nonce),
      chainId: BigInt(a.chainId),
      signature: Signature.from({ r: a.r, s: a.s, yParity: a.yParity as 0 | 1 }),
    };
    if (result.address !== payload.authorization.address || a.nonce !== payload.authorization.nonce || a.chainId !== payload.authorization.chainId)
      throw unexpectedAnswer('authorization', 'Custos returned an authorization that differs from the one requested');
    await this.#expectSigner(verifyAuthorization(result, result.signature));
    return result;
  }

  async #expectSigner(recovered: string): Promise<void> {
    const address = await this.getAddress();
    if (getAddress(recovered) !== address) throw unexpectedAnswer('signature', `the signature returned by Custos recovers to ${recovered}, not ${address}`);
  }
}

/** Maps an ethers Transaction (type inferred when unset) to the `transaction` of `POST /v1/sign/transaction`. */
export function toCustosTransaction(btx: Transaction): CustosTransaction {
  const typeNumber = btx.type ?? btx.inferType();
  const type = TYPE_NAMES[typeNumber];
  if (type === undefined) throw new CustosInputError('transaction.type', `Custos signs transaction types 0, 1, 2 and 4, not ${typeNumber}`);
  if (btx.chainId === 0n) throw new CustosInputError('transaction.chainId', 'required (Custos signs EIP-155 replay-protected transactions only)');
  const out: CustosTransaction = { type, chainId: Number(btx.chainId), nonce: btx.nonce, gas: btx.gasLimit, to: (btx.to as Address | null) ?? null };
  if (btx.value !== 0n) out.value = btx.value;
  if (btx.data !== '0x') out.data = btx.data as Hex;
  if (type === 'legacy' || type === 'eip2930') {
    if (btx.gasPrice === null) throw new CustosInputError('transaction.gasPrice', `required for ${type}`);
    out.gasPrice = btx.gasPrice;
  } else {
    if (btx.maxFeePerGas === null) throw new CustosInputError('transaction.maxFeePerGas', `required for ${type}`);
    out.maxFeePerGas = btx.maxFeePerGas;
    out.maxPriorityFeePerGas = btx.maxPriorityFeePerGas ?? 0n;
  }
  if (type !== 'legacy' && btx.accessList !== null && btx.accessList.length > 0)
    out.accessList = btx.accessList.map((item) => ({ address: item.address as Address, storageKeys: item.storageKeys as Hex[] }));
  if (type === 'eip7702')
    out.authorizationList = (btx.authorizationList ?? []).map((a) => ({
      chainId: Number(a.chainId),
      address: a.address as Address,
      nonce: Number(a.nonce),
      r: a.signature.r as Hex,
      s: a.signature.s as Hex,
      yParity: a.signature.yParity,
    }));
  return out;
}

/**
 * JSON schemas of the Ethereum operations (/v1/sign/transaction, message, typed-data,
 * authorization). They document the contract and refuse malformed shapes early; the kernel's
 * chain codec validates every rule again (ranges, checksums, fields per transaction type).
 */
import { MAX_BATCH_ITEMS, MAX_MESSAGE_BYTES, TRANSACTION_LIMITS, TYPED_DATA_LIMITS } from '@custos/kernel';
import { codeSchema, keyIndexSchema, signApprovalIdSchema, walletNameSchema } from './schemas.js';

const quantity = (description: string) =>
  ({
    type: 'string',
    pattern: '^(0|[1-9][0-9]*|0x[0-9a-fA-F]+)$',
    maxLength: 80,
    description: `${description}: decimal ("21000") or 0x-hex ("0x5208") string`,
  }) as const;
const address = (description: string) =>
  ({
    type: 'string',
    pattern: '^0x[0-9a-fA-F]{40}$',
    description: `${description}: 0x + 40 hex digits, any case; a mixed-case address must carry a valid EIP-55 checksum`,
  }) as const;
const hexData = (description: string, maxBytes: number) =>
  ({
    type: 'string',
    pattern: '^0x([0-9a-fA-F]{2})*$',
    maxLength: 2 + 2 * maxBytes,
    description: `${description}: 0x-hex bytes (even length), at most ${maxBytes} bytes`,
  }) as const;
const hex32 = { type: 'string', pattern: '^0x[0-9a-fA-F]{64}$', description: '32 bytes: 0x + 64 hex digits' } as const;
const scalar = (name: string) => ({ type: 'string', pattern: '^0x[0-9a-fA-F]{1,64}$', description: `signature ${name}, 0x-hex` }) as const;
const safeInteger = (minimum: number, description: string) => ({ type: 'integer', minimum, maximum: Number.MAX_SAFE_INTEGER, description }) as const;

const accessListSchema = {
  type: 'array',
  maxItems: TRANSACTION_LIMITS.maxAccessListEntries,
  description: `EIP-2930 access list (eip2930, eip1559, eip7702): at most ${TRANSACTION_LIMITS.maxAccessListEntries} addresses and ${TRANSACTION_LIMITS.maxStorageKeys} storage keys in all`,
  items: {
    type: 'object',
    required: ['address', 'storageKeys'],
    additionalProperties: false,
    properties: { address: address('Contract address'), storageKeys: { type: 'array', maxItems: TRANSACTION_LIMITS.maxStorageKeys, items: hex32 } },
  },
} as const;

const signedAuthorizationSchema = {
  type: 'object',
  required: ['chainId', 'address', 'nonce', 'r', 's', 'yParity'],
  additionalProperties: false,
  properties: {
    chainId: safeInteger(0, 'Chain id the authorization is valid on; 0 = every chain'),
    address: address('Delegate contract'),
    nonce: safeInteger(0, 'Nonce of the authority account'),
    r: scalar('r'),
    s: scalar('s (low-s)'),
    yParity: { type: 'integer', enum: [0, 1] },
  },
} as const;

export const transactionSchema = {
  type: 'object',
  required: ['type', 'chainId', 'nonce', 'gas'],
  additionalProperties: false,
  description:
    'legacy (EIP-155 only: chainId required): gasPrice; eip2930: gasPrice, accessList; eip1559: maxFeePerGas, maxPriorityFeePerGas, accessList; eip7702: as eip1559 plus authorizationList (non-empty), `to` required. A field of another type is refused.',
  properties: {
    type: { type: 'string', enum: ['legacy', 'eip2930', 'eip1559', 'eip7702'] },
    chainId: safeInteger(1, 'Chain id (EIP-155), ≥ 1'),
    nonce: safeInteger(0, 'Account nonce'),
    to: { anyOf: [address('Recipient'), { type: 'null' }], description: 'Recipient; absent or null = contract deployment (not for eip7702)' },
    value: quantity('Value in wei (default 0)'),
    data: hexData('Calldata or init code (default 0x)', TRANSACTION_LIMITS.maxDataBytes),
    gas: quantity('Gas limit, ≤ 2^64-1'),
    gasPrice: quantity('Gas price in wei (legacy, eip2930)'),
    maxFeePerGas: quantity('EIP-1559 fee cap in wei (eip1559, eip7702)'),
    maxPriorityFeePerGas: quantity('EIP-1559 tip cap in wei, ≤ maxFeePerGas (eip1559, eip7702)'),
    accessList: accessListSchema,
    authorizationList: {
      type: 'array',
      minItems: 1,
      maxItems: TRANSACTION_LIMITS.maxAuthorizations,
      items: signedAuthorizationSchema,
      description: `EIP-7702 signed authorizations (eip7702 only), at most ${TRANSACTION_LIMITS.maxAuthorizations}`,
    },
  },
} as const;

export const messageSchema = {
  type: 'object',
  minProperties: 1,
  maxProperties: 1,
  additionalProperties: false,
  description: `Exactly one of: text (signed as its UTF-8 bytes) or raw (0x-hex bytes); at most ${MAX_MESSAGE_BYTES} bytes`,
  // a text of more characters than MAX_MESSAGE_BYTES has more bytes too (the kernel counts the UTF-8 bytes)
  properties: { text: { type: 'string', maxLength: MAX_MESSAGE_BYTES }, raw: hexData('Raw bytes', MAX_MESSAGE_BYTES) },
} as const;

const typedFieldSchema = {
  type: 'object',
  required: ['name', 'type'],
  additionalProperties: false,
  // the kernel refuses longer names and types too (TYPED_DATA_LIMITS); here they are refused before parsing
  properties: { name: { type: 'string', maxLength: TYPED_DATA_LIMITS.maxNameLength }, type: { type: 'string', maxLength: TYPED_DATA_LIMITS.maxTypeLength } },
} as const;

export const typedDataSchema = {
  type: 'object',
  required: ['domain', 'types', 'primaryType', 'message'],
  additionalProperties: false,
  description: `EIP-712 typed data. Integers in message may be JSON numbers (safe integers) or decimal / 0x-hex strings; types.EIP712Domain is optional. At most ${TYPED_DATA_LIMITS.maxTypes} struct types of ${TYPED_DATA_LIMITS.maxFields} members, arrays of ${TYPED_DATA_LIMITS.maxArrayLength} elements, ${TYPED_DATA_LIMITS.maxStructValues} struct values and ${TYPED_DATA_LIMITS.maxValues} values (docs/operations-ethereum.md).`,
  properties: {
    domain: {
      type: 'object',
      additionalProperties: false,
      properties: {
        name: { type: 'string' },
        version: { type: 'string' },
        chainId: { anyOf: [{ type: 'integer' }, { type: 'string' }] },
        verifyingContract: address('Verifying contract'),
        salt: hex32,
      },
    },
    types: {
      type: 'object',
      maxProperties: TYPED_DATA_LIMITS.maxTypes,
      propertyNames: { maxLength: TYPED_DATA_LIMITS.maxNameLength },
      additionalProperties: { type: 'array', maxItems: TYPED_DATA_LIMITS.maxFields, items: typedFieldSchema },
    },
    primaryType: { type: 'string' },
    message: { type: 'object' },
  },
} as const;

export const authorizationSchema = {
  type: 'object',
  required: ['chainId', 'address', 'nonce'],
  additionalProperties: false,
  properties: {
    chainId: safeInteger(0, 'Chain id; 0 = valid on EVERY chain (flagged in the summary)'),
    address: address('Delegate contract: it will control the account'),
    nonce: safeInteger(0, 'Nonce of the account (at the time the authorization is processed)'),
  },
} as const;

/** Body of every chain operation: walletName, keyIndex, code? or approvalId?, and the operation under `key`. */
export function operationBody(key: string, schema: object) {
  return {
    type: 'object',
    required: ['walletName', 'keyIndex', key],
    additionalProperties: false,
    properties: { walletName: walletNameSchema, keyIndex: keyIndexSchema, code: codeSchema, approvalId: signApprovalIdSchema, [key]: schema },
  } as const;
}

/** A raw hash as an approval's operation: exactly 32 bytes, 0x + 64 hex digits. */
export const approvalHashSchema = { ...hex32, description: 'A raw 32-byte hash (blind signing): 0x + 64 hex digits' } as const;

/**
 * A batch of POST /v1/approvals (kernel/batchApproval.ts): 1 to MAX_BATCH_ITEMS operations of the
 * request's wallet, each `{ keyIndex, transaction | authorization }` with its sign route's schema.
 */
export const approvalBatchSchema = {
  type: 'array',
  minItems: 1,
  maxItems: MAX_BATCH_ITEMS,
  description: `A batch: 1 to ${MAX_BATCH_ITEMS} operations of the wallet, each { keyIndex, transaction } or { keyIndex, authorization }; one approval for all of them, each then signed once on its own route with the approval id (docs/approvals.md#batches)`,
  items: {
    type: 'object',
    required: ['keyIndex'],
    minProperties: 2,
    maxProperties: 2,
    additionalProperties: false,
    properties: { keyIndex: keyIndexSchema, transaction: transactionSchema, authorization: authorizationSchema },
  },
} as const;

/**
 * The operation of POST /v1/approvals: exactly one member, each the operation of its sign route
 * (the same schema), or a batch. None, two, or an unknown member is refused `invalid_input` naming
 * `operation` (or `operation.<member>`).
 */
export const approvalOperationSchema = {
  type: 'object',
  minProperties: 1,
  maxProperties: 1,
  additionalProperties: false,
  description:
    'Exactly one of { transaction }, { message }, { typedData }, { authorization } (the bodies of the /v1/sign/* routes), { hash } (0x + 64 hex digits, as /v1/sign/hash) or { batch } (up to 100 transactions and authorizations; no top-level keyIndex then)',
  properties: {
    transaction: transactionSchema,
    message: messageSchema,
    typedData: typedDataSchema,
    authorization: authorizationSchema,
    hash: approvalHashSchema,
    batch: approvalBatchSchema,
  },
} as const;

const chainLabelSchema = {
  type: 'object',
  required: ['id', 'name'],
  properties: {
    id: { type: 'integer' },
    name: { type: ['string', 'null'], description: 'Name of a well-known chain id, null otherwise' },
    currency: { type: 'string', description: 'Native currency symbol (ETH for unknown chains)' },
  },
} as const;

const amountSchema = {
  type: 'object',
  required: ['wei', 'ether'],
  properties: { wei: { type: 'string', description: 'decimal' }, ether: { type: 'string', description: 'exact decimal, 18 places at most' } },
} as const;

/**
 * The summary ("what you see is what you sign"): which members appear depends on `operation`.
 * It is also in the audit record of the decision (detail.summary, detail.summaryText).
 */
export const summarySchema = {
  type: 'object',
  required: ['operation', 'from'],
  additionalProperties: true,
  description: 'Structured summary of the operation; see docs/operations-ethereum.md',
  properties: {
    operation: { type: 'string', enum: ['hash', 'transaction', 'message', 'typedData', 'authorization', 'batch'] },
    from: { type: 'string', description: 'The signing address (EIP-55)' },
    chain: chainLabelSchema,
    // transaction
    type: { type: 'string', description: 'transaction: legacy | eip2930 | eip1559 | eip7702' },
    to: { type: ['string', 'null'], description: 'transaction: recipient, null for a deployment' },
    nonce: { type: 'integer', description: 'transaction, authorization: nonce' },
    value: { ...amountSchema, description: 'transaction: value sent' },
    gas: { type: 'string', description: 'transaction: gas limit' },
    gasPrice: { type: 'string', description: 'transaction (legacy, eip2930): wei' },
    maxFeePerGas: { type: 'string', description: 'transaction (eip1559, eip7702): wei' },
    maxPriorityFeePerGas: { type: 'string', description: 'transaction (eip1559, eip7702): wei' },
    maxFee: { ...amountSchema, description: 'transaction: gas × (gasPrice | maxFeePerGas), the most the fees can cost' },
    maxCost: { ...amountSchema, description: 'transaction: value + maxFee' },
    action: {
      type: 'object',
      additionalProperties: true,
      description:
        'transaction: what it does. kind = nativeTransfer {recipient} | deployment {contractAddress, initCodeLength} | erc20Transfer {token, recipient, amount} | erc20Approve {token, spender, amount, unlimited} | erc20IncreaseAllowance {token, spender, amount, unlimited} | transferFrom {token, owner, recipient, amount (ERC-20 base units or ERC-721 token id)} | erc721SafeTransferFrom {token, owner, recipient, tokenId, dataLength} | erc1155SafeTransferFrom {token, owner, recipient, id, amount, dataLength} | erc1155SafeBatchTransferFrom {token, owner, recipient, ids, amounts, dataLength} | setApprovalForAll {token, operator, approved, unlimited} | unknownCall {selector, dataLength}. Amounts are decimal strings in base units; unlimited = max uint256 approval (or approval for all).',
      properties: { kind: { type: 'string' } },
    },
    accessList: { type: 'object', additionalProperties: true, description: 'transaction: { addresses, storageKeys } counts' },
    authorizations: {
      type: 'array',
      description: 'transaction (eip7702): each authorization: { chainId, allChains, delegate, nonce, authority (recovered signer, or null) }',
      items: { type: 'object', additionalProperties: true },
    },
    // message
    encoding: { type: 'string', description: 'message: text | raw' },
    byteLength: { type: 'integer', description: 'message: length of the signed bytes' },
    text: { type: 'string', description: 'message: the text' },
    raw: { type: 'string', description: 'message: the raw bytes' },
    // typed data
    domain: { type: 'object', additionalProperties: true, description: 'typedData: the EIP-712 domain (name, version, chainId, verifyingContract, salt)' },
    primaryType: { type: 'string', description: 'typedData: the primary type' },
    message: { type: 'object', additionalProperties: true, description: 'typedData: the normalised message (integers as decimal strings)' },
    permit: { type: 'object', additionalProperties: true, description: 'typedData: an EIP-2612 Permit, decoded {token, spender, amount, unlimited, deadline}' },
    // hash
    hash: { type: 'string', description: 'hash: the 32 bytes signed, 0x-hex' },
    blind: { type: 'boolean', description: 'hash: always true — a raw hash cannot be shown for what it is' },
    // authorization
    allChains: { type: 'boolean', description: 'authorization: chainId 0, valid on every chain' },
    delegate: { type: 'string', description: 'authorization: the contract that will control the account' },
    revokesDelegation: { type: 'boolean', description: 'authorization: delegate is the zero address (clears the delegation)' },
    warning: { type: 'string', description: 'authorization: "delegate: 0x… — this contract will control the account"' },
    // batch
    count: { type: 'integer', description: 'batch: how many operations' },
    signers: { type: 'array', items: { type: 'string' }, description: 'batch: every signing address (from is the first item’s)' },
    totals: {
      type: 'object',
      additionalProperties: true,
      description:
        'batch: native: per chain { chain, value, maxFee } (amounts in wei and ether); tokens: per chain and ERC-20 contract { chain, token, amount } (base units, from decoded transfer calls)',
    },
    recipients: {
      type: 'array',
      items: { type: 'object', additionalProperties: true },
      description: 'batch: every payment { item, chain, recipient, asset (native or the token contract), amount (wei or base units) }',
    },
    otherOperations: { type: 'integer', description: 'batch: items that are neither a plain transfer nor an ERC-20 transfer (see their own summaries)' },
    items: {
      type: 'array',
      items: { type: 'object', additionalProperties: true },
      description: 'batch: each operation { keyIndex, summary, summaryText } (its own summary, as its sign route returns it)',
    },
  },
} as const;

const common = {
  walletName: { type: 'string' },
  keyIndex: { type: 'integer' },
  address: { type: 'string', description: 'The signing address (EIP-55)' },
  summary: summarySchema,
  summaryText: { type: 'string', description: 'The summary as one line of text' },
  opHash: { type: 'string', description: 'The kernel’s hash of the canonical operation, as in the audit record' },
  auditSeq: { type: 'integer', description: 'Sequence number of the audit record of this signature' },
  digest: { type: 'string', description: 'The 32-byte digest the kernel computed and signed, 0x-hex' },
} as const;
const commonRequired = ['walletName', 'keyIndex', 'address', 'summary', 'summaryText', 'opHash', 'auditSeq', 'digest'] as const;

export const transactionResponseSchema = {
  type: 'object',
  required: [...commonRequired, 'serializedTransaction', 'transactionHash', 'signature'],
  properties: {
    ...common,
    serializedTransaction: { type: 'string', description: 'The signed transaction, 0x-hex, ready for eth_sendRawTransaction' },
    transactionHash: { type: 'string', description: 'keccak-256 of serializedTransaction' },
    signature: {
      type: 'object',
      required: ['r', 's', 'yParity', 'v'],
      properties: {
        r: { type: 'string', description: '0x + 64 hex digits' },
        s: { type: 'string', description: '0x + 64 hex digits, low-s' },
        yParity: { type: 'integer', enum: [0, 1] },
        v: {
          anyOf: [{ type: 'integer' }, { type: 'string' }],
          description: 'legacy: chainId·2 + 35 + yParity (EIP-155); typed: yParity. A JSON integer when it is a safe integer, else a decimal string.',
        },
      },
    },
  },
} as const;

export const signatureResponseSchema = {
  type: 'object',
  required: [...commonRequired, 'signature', 'r', 's', 'yParity'],
  properties: {
    ...common,
    signature: { type: 'string', description: '0x r ‖ s ‖ v, 65 bytes, v = 27 + yParity' },
    r: { type: 'string', description: '0x + 64 hex digits' },
    s: { type: 'string', description: '0x + 64 hex digits, low-s' },
    yParity: { type: 'integer', enum: [0, 1] },
  },
} as const;

export const authorizationResponseSchema = {
  type: 'object',
  required: [...commonRequired, 'authorization'],
  properties: {
    ...common,
    authorization: {
      type: 'object',
      required: ['chainId', 'address', 'nonce', 'r', 's', 'yParity'],
      description: 'Exactly what goes into a type-4 transaction’s authorizationList',
      properties: {
        chainId: { type: 'integer' },
        address: { type: 'string', description: 'The delegate contract (EIP-55)' },
        nonce: { type: 'integer' },
        r: { type: 'string', description: '0x + 64 hex digits' },
        s: { type: 'string', description: '0x + 64 hex digits, low-s' },
        yParity: { type: 'integer', enum: [0, 1] },
      },
    },
  },
} as const;

// @custos/sdk — the client of the Custos /v1 API. Subpaths: @custos/sdk/viem (a viem account),
// @custos/sdk/ethers (an ethers v6 signer), @custos/sdk/fortanix (the TOTP ETH Signer SDK's Accounts).
export {
  type ApiKeyView,
  type CallOptions,
  type CreateApiKeyRequest,
  type CustosClient,
  type CustosClientOptions,
  createCustosClient,
  type GetApprovalOptions,
  MAX_WAIT_SECONDS,
} from './client.js';
export { CustosApiError, type CustosErrorCode, CustosInputError, CustosRequestError, isCustosApiError } from './errors.js';
export type { CodeRequest, CodeSource } from './resolveCode.js';
export type { ApprovalCallback, ApprovalPrompt } from './resolveConsent.js';
export type * from './types.js';
export { verifyWebhookSignature, WebhookSignatureError, type WebhookSignatureFailure } from './verifyWebhookSignature.js';

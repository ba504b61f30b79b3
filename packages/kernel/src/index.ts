export * from './errors.js';
export * from './audit/types.js';
export { computeAuditHash } from './audit/computeAuditHash.js';
export { AUDIT_DETAIL_MAX_BYTES, boundAuditDetail, type TruncatedDetail } from './audit/boundAuditDetail.js';
export { DEFAULT_AUDIT_BURST_BYTES, DEFAULT_AUDIT_BYTES_PER_SECOND } from './audit/auditRateLimit.js';
export { verifyAuditChain, type AuditChainVerdict } from './audit/verifyAuditChain.js';
export { readAuditPages } from './audit/readAuditPages.js';
export { compareFactorRows, type FactorDiscrepancy } from './audit/compareFactorRows.js';
export {
  type AuditCheckpoint,
  type AuditCheckpointBody,
  auditCheckpointMessage,
  createAuditCheckpoint,
  parseAuditCheckpoint,
  parseAuditPublicKey,
  verifyAuditCheckpointSignature,
} from './audit/auditCheckpoint.js';
export { AUDIT_KEY_INFO, deriveAuditPublicKey } from './audit/deriveAuditSigningKey.js';
export type { AuditCheckpointOptions } from './kernel/AuditCheckpointer.js';
export { readAuditCheckpointPages } from './audit/readAuditCheckpointPages.js';
export { type AuditLogFault, type AuditLogReport, type VerifyAuditLogOptions, verifyAuditLog } from './audit/verifyAuditLog.js';
export * from './store/types.js';
export { Barrier } from './barrier/Barrier.js';
export * from './kernel/Kernel.js';
export {
  type ActivityEntry,
  ACTIVITY_LIMIT,
  type FreezeNotice,
  frozenRefusal,
  listFreezeNotices,
  type OwnerPage,
  ownerCapability,
  ownerLinkOf,
  type UnfreezeBy,
  unfreezeWallet,
} from './kernel/freeze.js';
export { countRecoveryCodes, issueRecoveryCodes, RECOVERY_CODE_COUNT, RECOVERY_THROTTLE, useRecoveryCode } from './kernel/recoveryCodes.js';
export { newOwnerDeviceToken, OWNER_DEVICE_TOKEN, OWNER_DEVICE_TTL_MS, ownerDeviceOf } from './kernel/ownerDevice.js';
export { initializeSigner, type InitializeSignerOptions } from './kernel/initializeSigner.js';
export { REKEY_STEPS, type RekeyResult, type RekeyStep, type RekeySignerOptions, rekeySigner, rekeyStepsFor } from './kernel/rekeySigner.js';
export { type ApiKeyView, assertApiKeyName, createApiKey, MAX_KEY_LIFETIME_SECONDS, revokeApiKey, parseScopes, viewApiKey } from './kernel/manageApiKeys.js';
export { computeOpHash } from './kernel/computeOpHash.js';
export { MAX_RPC_ACCOUNTS_PAGE, type RpcAccount, type RpcStoredRequest, rpcRequestKey } from './kernel/rpcAccounts.js';
export { type BatchView, computeBatchOpHash, MAX_BATCH_ITEMS } from './kernel/batchApproval.js';
export type { BackendEnrollment, UnknownWallets } from './kernel/policy.js';
export { applyWalletPolicy, decidePolicy, recordPolicyUsage } from './kernel/policy.js';
export { evaluatePolicy, type PolicyDecision, type PolicyInput } from './kernel/evaluatePolicy.js';
export {
  type AmountLimit,
  assertWalletPolicy,
  BUILT_IN_POLICY,
  comparePolicies,
  type EffectivePolicy,
  effectivePolicy,
  type WalletPolicy,
} from './kernel/walletPolicy.js';
export type { TimelockedPolicyChange, WalletPolicyView } from './kernel/walletPolicies.js';
export type { UnreadableWalletListItem, WalletList, WalletListItem } from './kernel/wallets.js';
export { DEFAULT_WALLET_PAGE, MAX_WALLET_PAGE } from './kernel/wallets.js';
export * from './kernel/types.js';
export type { ApprovalRef, Factor, FactorRecord, FactorRows, FactorWallet, ProofChannel, Requirement, Strength } from './consent/Factor.js';
export { HWKEY_CHALLENGE_LIMIT } from './consent/hwkeyFactor.js';
export { loadVectors } from './testing/loadVectors.js';
export { canonicalJson } from './util/canonicalJson.js';
export { assertHex } from './util/assertHex.js';
export { assertKeyIndex } from './util/assertKeyIndex.js';
export { assertWalletName } from './util/assertWalletName.js';
export { assertTenantName } from './util/assertTenantName.js';
export * from './crypto/index.js';
export * from './totp/index.js';
export * from './seal/index.js';
export { assertUnsealClient, LOCAL_UNSEAL_CLIENT, MAX_UNSEAL_CLIENT_KEY_LENGTH, type UnsealClient } from './kernel/unseal/unsealClient.js';
export { MAX_UNSEAL_CLIENTS, UnsealThrottles } from './kernel/unseal/UnsealThrottles.js';
export { MAX_QUEUED_UNSEALS_PER_CLIENT, UnsealQueue } from './kernel/unseal/UnsealQueue.js';
export * from './chain/index.js';
export type { DeliveryMessage, DeliveryResult, TimelockNotice } from './kernel/oobDelivery.js';
export {
  type ChangePage,
  type CreatedChange,
  emergencyExitFor,
  MAX_OPEN_CHANGES_PER_WALLET,
  type OwnerPageChange,
  type PendingChangeView,
  REQUESTABLE_CHANGE_KINDS,
  TIMELOCK_DELAY_MS,
  type TimelockHooks,
  type TimelockSettings,
} from './kernel/pendingChanges.js';
export { deliveryBackoffMs } from './kernel/oobDelivery.js';
export { diffPolicies, type PolicyDiffEntry, policyDiffLines } from './kernel/policyDiff.js';
export { computeOobCode, DEFAULT_OOB_LIMITS, type OobChannel, type OobLimits, type OobShown } from './consent/oobFactor.js';
// ---- issue 13: quorum ----
export {
  type AdminKeyFile,
  type AdminStatement,
  APPROVE_LABEL,
  assertAdminPublicKey,
  computePayloadHash,
  generateAdminKey,
  parseAdminKeyFile,
  PROPOSE_LABEL,
  signAdminMessage,
} from './kernel/quorum/adminKeys.js';
export {
  type AnyProposalKind,
  type ApiKeyCreatePayload,
  BUILT_IN_PROPOSAL_KINDS,
  type ProposalApplyContext,
  type ProposalKind,
  type ProposalMeta,
  type ProposalSubject,
  type UnsealerChangePayload,
} from './kernel/quorum/proposalKinds.js';
export { DEFAULT_PROPOSAL_TTL_SECONDS, MAX_PROPOSAL_TTL_SECONDS, MIN_PROPOSAL_TTL_SECONDS, type ProposalView } from './kernel/quorum/proposals.js';
export { bootstrapQuorumOffline } from './kernel/quorum/bootstrap.js';
export {
  type AdminPasskeyCredential,
  adminPasskeyChallenge,
  adminPasskeyId,
  isPasskeyAdminId,
} from './kernel/quorum/adminPasskeyCredential.js';
export {
  ADMIN_LINK_TTL,
  ADMIN_SESSION_TTL_MS,
  type AdminCandidate,
  type AdminEnrollmentLink,
  type AdminEnrollmentPage,
  candidateEntryOf,
} from './kernel/quorum/adminPasskeys.js';
export { ADMIN_PAGE_APP, type AdminPageDraft } from './kernel/quorum/adminPage.js';
export {
  type AdminEntry,
  adminsWithoutEmail,
  DEFAULT_DEPLOYMENT_SETTINGS,
  type DeploymentSettings,
  MIN_TIMELOCK_DELAY_SECONDS,
  parseQuorumSettings,
  type QuorumSettings,
  QUORUM_SETTING,
  quorumConfigured,
  quorumRequired,
  readDeploymentSettings,
  readQuorumSettings,
} from './kernel/quorum/settings.js';
export { generateApiKeyToken, hashApiKeySecret } from './kernel/apiKeyToken.js';
// ---- issue 13: quorum wiring ----
export { changePayloadHash, type ChangeQuorumApproval, type ChangeQuorumRequest } from './kernel/pendingChanges.js';
export { timelockDelayInForce, type WalletRef } from './kernel/quorumWiring.js';
export {
  ADMIN_MESSAGE_MAX_CHARS,
  ADMIN_NOTICE_ACTION,
  type AdminNotice,
  type AdminNoticeList,
  boundAdminMessage,
  MAX_NOTICE_LIMIT,
  tellAdmins,
} from './kernel/quorum/tellAdmins.js';
export { DEFAULT_RETENTION_MS, type HousekeepingOptions, MIN_RETENTION_MS, type PurgeStep, purgeSteps } from './kernel/housekeeping.js';
export {
  type AuditListRequest,
  type AuditPage,
  DEFAULT_AUDIT_PAGE,
  encodeAuditCursor,
  MAX_AUDIT_PAGE,
  listAudit,
  parseAuditListRequest,
} from './kernel/listAudit.js';

import type { CustosClient } from './client.js';
import { CustosApiError, CustosInputError } from './errors.js';
import { type CodeRequest, type CodeSource, resolveCode } from './resolveCode.js';
import type { ApprovalView, OperationSummary, SingleApprovalOperation } from './types.js';

/** What an approval callback is given: the link for the wallet owner and what they are asked to approve. */
export interface ApprovalPrompt {
  /** The approval page: hand it to the wallet owner, and only to them. */
  approveUrl: string;
  /** The operation as the page shows it, in one line. */
  summaryText: string;
  summary: OperationSummary;
  /** The approval id (the SDK waits on it and signs with it). */
  id: string;
  /** When the owner's time to decide runs out (ms since the epoch). */
  expiresAt: number;
  walletName: string;
  keyIndex: number;
  operation: CodeRequest['operation'];
}

/**
 * Consent on the kernel's own page instead of a relayed code: the SDK creates an approval for the
 * operation, calls this with the link for the owner, waits for the decision and signs with the
 * approval. A callback that throws cancels the approval.
 */
export type ApprovalCallback = (prompt: ApprovalPrompt) => void | Promise<void>;

/** How a viem account or an ethers signer gets the owner's consent: a code, an approval, or neither (a wallet without a factor). */
export interface ConsentOptions {
  code?: CodeSource;
  approval?: ApprovalCallback | undefined;
}

/** The code or the approval, never both (checked when the account or signer is made). */
export function assertOneConsent({ code, approval }: ConsentOptions): void {
  if (approval === undefined) return;
  if (typeof approval !== 'function') throw new CustosInputError('approval', 'expected a function ({ approveUrl, summaryText }) => void');
  if (code !== undefined) throw new CustosInputError('approval', 'give code or approval, not both');
}

/** What a refused decision is thrown as: the code the sign route would answer with the approval. */
const REFUSED: Partial<Record<ApprovalView['state'], { code: string; status: number; message: string }>> = {
  rejected: { code: 'approval_rejected', status: 403, message: 'the wallet owner rejected the approval' },
  expired: { code: 'approval_expired', status: 409, message: 'the approval expired before the wallet owner decided' },
  cancelled: { code: 'approval_cancelled', status: 409, message: 'the approval was cancelled' },
};

/**
 * The consent members of one sign request: `{ code }` (from the code source), or, with an approval
 * callback, `{ approvalId }` of an approval the owner approved for exactly this operation. A
 * rejected, expired or cancelled approval throws a CustosApiError of that code (approval_rejected,
 * approval_expired, approval_cancelled); nothing is signed then.
 */
export async function resolveConsent(
  client: CustosClient,
  { code, approval }: ConsentOptions,
  request: CodeRequest,
): Promise<{ code?: string | undefined; approvalId?: string }> {
  if (approval === undefined) return { code: await resolveCode(code, request) };
  const { operation, walletName, keyIndex } = request;
  const body = { [operation]: (request.payload as Record<string, unknown>)[operation] } as SingleApprovalOperation;
  const created = await client.createApproval({ walletName, keyIndex, operation: body });
  try {
    await approval({
      approveUrl: created.approveUrl,
      summaryText: created.summaryText,
      summary: created.summary,
      id: created.id,
      expiresAt: created.expiresAt,
      walletName,
      keyIndex,
      operation,
    });
  } catch (error) {
    // the app could not hand the link over: the owner must not be able to approve it later
    await client.cancelApproval(created.id).catch(() => undefined);
    throw error;
  }
  let decided: ApprovalView;
  try {
    decided = await client.waitForApproval(created.id);
  } catch (error) {
    // no decision reached us (aborted, overloaded, the network): the approval must not be used later
    await client.cancelApproval(created.id).catch(() => undefined);
    throw error;
  }
  const refused = REFUSED[decided.state];
  if (refused !== undefined) throw new CustosApiError({ ...refused, details: { approvalId: created.id, state: decided.state } });
  // approved (or consumed already: the identical operation signs again with the same result)
  return { approvalId: created.id };
}

import { CustosError } from '../errors.js';
import type { KernelContext } from './context.js';
import type { ApprovalDecision, ApprovalPage, ApprovalView, App, CreateApprovalRequest, CreatedApproval } from './types.js';

function notYet(): never {
  throw new CustosError('internal', 'approvals: not implemented yet');
}

export async function createApproval(_ctx: KernelContext, _app: App, _request: CreateApprovalRequest): Promise<CreatedApproval> {
  notYet();
}
export async function getApproval(_ctx: KernelContext, _app: App, _request: { id: unknown }): Promise<ApprovalView> {
  notYet();
}
export async function cancelApproval(_ctx: KernelContext, _app: App, _request: { id: unknown }): Promise<ApprovalView> {
  notYet();
}
export async function openApprovalPage(_ctx: KernelContext, _capability: unknown): Promise<ApprovalPage> {
  notYet();
}
export async function decideApproval(_ctx: KernelContext, _capability: unknown, _decision: ApprovalDecision): Promise<ApprovalView> {
  notYet();
}
export async function expireApprovals(_ctx: KernelContext): Promise<number> {
  notYet();
}

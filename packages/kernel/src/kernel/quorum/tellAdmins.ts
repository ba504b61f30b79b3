import type { StoreTx } from '../../store/types.js';
import type { KernelContext } from '../context.js';
import { enqueueMessage } from '../oobDelivery.js';
import { readQuorumSettings } from './settings.js';

/** How long a message to the admins is worth sending. */
const ADMIN_MESSAGE_TTL_MS = 24 * 3600_000;

/**
 * "Every admin is told" (issue 13 points 3 and 2): queues `text` to every admin of the configured set
 * that has an e-mail address, through the kernel's outbox (kind `quorum`), in the caller's unit — so
 * the message exists only if the decision it tells of commits. No admin set, or no addresses: nothing
 * is queued, and the decision's audit record is the notice. The wallet's name travels in the text
 * only (walletName '' keeps the owner's "this was not me" link out of an admin's message).
 * Returns how many messages were queued.
 */
export async function tellAdmins(tx: StoreTx, ctx: KernelContext, text: string): Promise<number> {
  const barrier = ctx.requireBarrier();
  // An unlocked read of the row only (a freeze's unit holds the wallet's row: no settings lock taken
  // after it; a search of the log for a deleted row is the proposals' business, not each notice's).
  const quorum = await readQuorumSettings(ctx.store, barrier);
  if (quorum === undefined) return 0;
  const now = ctx.now();
  let queued = 0;
  for (const admin of quorum.admins) {
    if (admin.email === undefined) continue;
    await enqueueMessage(tx, barrier, (n) => ctx.random(n), {
      message: { kind: 'quorum', channel: 'email', address: admin.email, walletName: '', summaryText: text.slice(0, 1000) },
      approvalId: null,
      now,
      expiresAt: now + ADMIN_MESSAGE_TTL_MS,
    });
    queued += 1;
  }
  return queued;
}

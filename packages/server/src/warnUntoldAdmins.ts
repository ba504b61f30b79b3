import type { Kernel } from '@custos/kernel';

/**
 * The warning a signer whose admin set has admins without an e-mail address (a set made by an earlier
 * version; new sets need one) logs at each unseal: it keeps working — refusing to serve would lock the
 * operators out of their own quorum — but those admins are told nothing of freezes and proposals until
 * a quorum.set gives them an address (docs/quorum.md "Every admin is told"). The admin page and
 * `custos admin notices` say so too. Undefined when every admin has one (or on a read failure, which
 * the next request meets anyway).
 */
export async function untoldAdminsWarning(kernel: Kernel): Promise<string | undefined> {
  let untold: string[];
  try {
    untold = await kernel.untoldAdmins();
  } catch {
    return undefined;
  }
  if (untold.length === 0) return undefined;
  return `ADMINS TOLD NOTHING: ${untold.length} admin(s) of the admin set have no e-mail address (${untold.map((a) => `${a.slice(0, 16)}…`).join(', ')}): they are not told of freezes nor of proposals. Propose a quorum.set that gives every admin an address (docs/quorum.md).`;
}

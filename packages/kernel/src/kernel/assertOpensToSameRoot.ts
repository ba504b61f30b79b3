import { timingSafeEqual } from 'node:crypto';
import { CustosError, isCustosError } from '../errors.js';
import { parseShareFile } from '../seal/shareFile.js';
import { openSealedRoot, type ShareFileOut, type UnsealCredential, type UnsealerSpec } from '../seal/unsealers.js';

/**
 * Checks that a new sealed root opens with its new credentials and gives the same root (init,
 * rekey), before anything is written: a signer never switches to — or starts with — an envelope
 * nobody can open. Shamir: the first `threshold` share files are parsed as an operator's would be
 * (signature checked against the new header) and combined. Any failure is `internal` (nothing was
 * changed); the reopened root and the parsed shares are wiped.
 */
export async function assertOpensToSameRoot(
  sealedRoot: unknown,
  signerId: string,
  next: UnsealerSpec,
  shareFiles: ShareFileOut[],
  root: Uint8Array,
): Promise<void> {
  let credential: UnsealCredential;
  if (next.type === 'passphrase') credential = { type: 'passphrase', passphrase: next.passphrase };
  else if (next.type === 'shamir') credential = { type: 'shamir', shares: shareFiles.slice(0, next.threshold).map((f) => parseShareFile(f.text)) };
  else credential = { type: 'pkcs11', modulePath: next.modulePath, pin: next.pin };
  let reopened: Uint8Array | undefined;
  try {
    reopened = await openSealedRoot(sealedRoot, signerId, credential);
    if (reopened.length !== root.length || !timingSafeEqual(reopened, root)) throw new Error('the new envelope opens to another root');
  } catch (error) {
    throw new CustosError('internal', 'the new sealed root does not open with the new credentials; nothing was changed', {
      cause: isCustosError(error) ? error : undefined,
    });
  } finally {
    reopened?.fill(0);
    if (credential.type === 'shamir') for (const s of credential.shares) s.share.fill(0);
  }
}

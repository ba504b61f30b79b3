import { SHARE_FILE_FORMAT, SHARE_FILE_VERSION, SHARE_FILE_VERSION_UNSIGNED, type ShareFileBody, shareFileChecksum } from './shareFileFormat.js';
import type { UnsealShare } from './unsealerTypes.js';

/**
 * The text of one operator's share file: a small JSON object (format, version, signerId, shareSetId,
 * index, threshold, shares, the share in base64, its signature) and a checksum over all of it. A
 * share with a signature is written as version 2; one without as version 1, the format of a set made
 * before shares were signed (init and rekey always sign: only tests write version 1 now). The text
 * holds a secret: it is written only to the operator's file (mode 0600), never logged or printed.
 */
export function encodeShareFile(share: UnsealShare): string {
  const body: ShareFileBody = {
    format: SHARE_FILE_FORMAT,
    version: share.signature === undefined ? SHARE_FILE_VERSION_UNSIGNED : SHARE_FILE_VERSION,
    signerId: share.signerId,
    shareSetId: share.shareSetId,
    index: share.index,
    threshold: share.threshold,
    shares: share.shares,
    share: Buffer.from(share.share).toString('base64'),
  };
  if (share.signature !== undefined) body.signature = Buffer.from(share.signature).toString('base64');
  return `${JSON.stringify({ ...body, checksum: shareFileChecksum(body) }, null, 2)}\n`;
}

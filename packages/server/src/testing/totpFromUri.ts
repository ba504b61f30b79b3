import { generateTotp, parseOtpauthUri } from '@custos/kernel';
import { recordTestSecret } from './createTestSigner.js';

/** What the user's authenticator app would show at `nowMs` (offset in 30 s steps), from the enrolment URI. */
export function totpFromUri(otpauthUri: string, nowMs: number, stepOffset = 0): string {
  const { secret } = parseOtpauthUri(otpauthUri);
  recordTestSecret('totpSecretBase32', new URL(otpauthUri).searchParams.get('secret') ?? '');
  recordTestSecret('totpSecretHex', Buffer.from(secret).toString('hex'));
  const code = generateTotp(secret, Math.floor(nowMs / 1000) + stepOffset * 30);
  recordTestSecret('totpCode', code);
  return code;
}

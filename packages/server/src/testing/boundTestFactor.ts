import { CustosError, type Factor } from '@custos/kernel';
import { inMemoryFactorRowsForTests } from './inMemoryFactorRows.js';

/**
 * A `bound` factor that exists only in tests (rows IN MEMORY), enrolled through the kernel's seam: it
 * makes a wallet require bound. It accepts the proof `approve:<approvalId>:<opHash>` for the
 * approval it is asked about, standing in for a passkey's assertion over the approval's challenge.
 */
export function boundTestFactor(): Factor<{ uses: number }, null, null> {
  return {
    kind: 'test-bound',
    strength: 'bound',
    label: 'test bound factor',
    rows: inMemoryFactorRowsForTests<{ uses: number }>(({ uses }) => ({ uses })),
    enroll: {
      async begin() {
        return { secret: null, shown: null, pending: null };
      },
      finish() {
        return { id: 'device', state: { uses: 0 } };
      },
    },
    verify({ wallet, approval, opHash, proof }) {
      if (approval === undefined || proof !== `approve:${approval.id}:${opHash}`)
        throw new CustosError('code_invalid', 'not an answer for this approval', { details: { field: 'proof' } });
      return { stateChange: { uses: wallet.factor.state.uses + 1 }, evidence: { credentialId: 'device', userVerified: true } };
    },
  };
}

/** An amount in wei and in ether (exact decimal, bigint arithmetic: no float ever touches it). */
export interface Amount {
  wei: string;
  ether: string;
}

const WEI_PER_ETHER = 10n ** 18n;

/** Exact decimal ether of a wei amount: `1500000000000000000n` → `"1.5"`, `1n` → `"0.000000000000000001"`. */
export function formatEther(wei: bigint): string {
  const whole = wei / WEI_PER_ETHER;
  const fraction = (wei % WEI_PER_ETHER).toString().padStart(18, '0').replace(/0+$/, '');
  return fraction === '' ? whole.toString() : `${whole}.${fraction}`;
}

export function toAmount(wei: bigint): Amount {
  return { wei: wei.toString(), ether: formatEther(wei) };
}

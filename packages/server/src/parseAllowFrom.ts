import { BlockList, isIP } from 'node:net';
import { CustosError } from '@custos/kernel';

/**
 * `--allow-from A,B/N,…`: the addresses or CIDR ranges the API listener answers (Web3Signer's
 * allowlist, by address). The address checked is the client's as Fastify resolves it with
 * --trust-proxy: the socket's own, or — only from a trusted proxy — the right-most untrusted
 * X-Forwarded-For entry; a header from any other peer changes nothing.
 */
export function parseAllowFrom(text: string): string[] {
  return parseAddressList(text, 'allow-from', 'addresses or CIDR ranges');
}

/**
 * A comma-separated list of IPv4/IPv6 addresses and CIDR ranges (`--allow-from`, `--trust-proxy`),
 * each entry trimmed and checked; a bad one is `invalid_input` naming the option (`field`) and the
 * entry, the message saying what the list holds (`what`).
 */
export function parseAddressList(text: string, field: string, what: string): string[] {
  const entries = text.split(',').map((entry) => entry.trim());
  for (const entry of entries) {
    const [address = '', prefix, extra] = entry.split('/');
    const family = isIP(address);
    const prefixOk = prefix === undefined || (/^[0-9]{1,3}$/.test(prefix) && Number(prefix) <= (family === 6 ? 128 : 32));
    if (family === 0 || !prefixOk || extra !== undefined)
      throw new CustosError('invalid_input', `--${field}: expected a comma-separated list of ${what}, got ${JSON.stringify(entry)}`, {
        details: { field },
      });
  }
  return entries;
}

/** A matcher for a list of addresses and CIDR ranges (as parseAllowFrom returns); an IPv4-mapped IPv6 address matches as its IPv4 form. */
export function addressMatcher(entries: readonly string[]): (address: string | undefined) => boolean {
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', prefix] = entry.split('/');
    const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefix), type);
  }
  return (raw) => {
    if (raw === undefined) return false;
    const address = /^::ffff:[0-9.]+$/i.test(raw) ? raw.slice(7) : raw;
    const family = isIP(address);
    if (family === 0) return false;
    return list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  };
}

import { isIP } from 'node:net';
import { CustosError } from '@custos/kernel';

/**
 * `--trust-proxy A,B/N,…`: the addresses or CIDR ranges of the reverse proxies in front of the
 * server. Requests whose socket comes from one of them are attributed to the address the proxy
 * wrote in X-Forwarded-For (the right-most address that is not itself a trusted proxy, Fastify's
 * trustProxy semantics); every other request to its socket's address, whatever headers it sends.
 * There is no "trust everything": a caller could then pick the address its back-off is kept under.
 */
export function parseTrustProxy(text: string): string[] {
  const entries = text.split(',').map((entry) => entry.trim());
  for (const entry of entries) {
    const [address = '', prefix, extra] = entry.split('/');
    const family = isIP(address);
    const prefixOk = prefix === undefined || (/^[0-9]{1,3}$/.test(prefix) && Number(prefix) <= (family === 6 ? 128 : 32));
    if (family === 0 || !prefixOk || extra !== undefined)
      throw new CustosError('invalid_input', `--trust-proxy: expected a comma-separated list of proxy addresses or CIDR ranges, got ${JSON.stringify(entry)}`, {
        details: { field: 'trust-proxy' },
      });
  }
  return entries;
}

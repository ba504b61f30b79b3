import { isIP } from 'node:net';
import { CustosError } from '@custos/kernel';

/** `HOST:PORT` (an IPv6 address in brackets, `[::1]:8443`); the port 0..65535 as --port takes it. */
export function parseListenAddress(value: string, option: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(value);
  const port = Number(m?.[3]);
  const host = m?.[1] ?? m?.[2];
  if (m === null || host === undefined || !(port >= 0 && port <= 65535) || (m[1] !== undefined && isIP(m[1]) !== 6) || /^[.-]|[.-]$/.test(host))
    throw new CustosError('invalid_input', `--${option}: expected HOST:PORT (an IPv6 address as [::1]:PORT, the port 0..65535), got ${JSON.stringify(value)}`, {
      details: { field: option },
    });
  return { host, port };
}

import { CustosError } from '@custos/kernel';

/** A webhook's URL: http or https, else invalid_input naming `field` (the URL itself is not echoed: it may hold a credential). */
export function assertHttpUrl(value: string, what: string, field: string): URL {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:'))
    throw new CustosError('invalid_input', `${what}: expected an http(s) URL`, { details: { field } });
  return url;
}

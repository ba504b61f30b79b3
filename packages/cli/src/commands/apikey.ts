import { assertTenantName, createApiKey, CustosError, DEFAULT_TENANT, parseScopes, revokeApiKey } from '@custos/kernel';

import { type Io, parseOptions, requireOption } from '../io.js';
import { openInitialisedStore, readStoreLocation } from '../openInitialisedStore.js';

const HELP = `Usage:
  custos apikey create (--data-dir D | --store URL) --name N --scopes register,derive,sign [--tenant T]
  custos apikey create (--data-dir D | --store URL) --name N --scopes admin[,derive] --tenant system
  custos apikey list   (--data-dir D | --store URL) [--json]
  custos apikey revoke (--data-dir D | --store URL) --id ID

create prints the new key ONCE, as the last word of its output; only a hash is stored.
Scopes: register (enrol factors), derive (public keys, addresses), sign, admin (operator actions: POST /v1/sys/seal).
Tenant: the backend the key belongs to (default "default"): a wallet belongs to the tenant whose key
first named it, and a key of another tenant gets wallet_not_found for it. admin is an operator
scope: only keys of the operator tenant "system" may hold it.`;

export async function apikeyCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.stdout.write(`${HELP}\n`);
    return sub === undefined ? 2 : 0;
  }
  const opts = parseOptions(rest, {
    'data-dir': { type: 'string' },
    store: { type: 'string' },
    name: { type: 'string' },
    scopes: { type: 'string' },
    id: { type: 'string' },
    tenant: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (opts.help) {
    io.stdout.write(`${HELP}\n`);
    return 0;
  }
  const location = readStoreLocation(opts);
  switch (sub) {
    case 'create': {
      const name = requireOption(opts.name, 'name');
      const scopes = parseScopes(requireOption(opts.scopes, 'scopes'));
      const tenant = assertTenantName(opts.tenant ?? DEFAULT_TENANT, 'tenant');
      const store = await openInitialisedStore(location);
      try {
        const { id, token } = await createApiKey(store, { name, scopes, tenant });
        io.stdout.write(`Created API key ${id} (${name}; tenant ${tenant}; scopes ${scopes.join(',')}). It is shown once:\n${token}\n`);
      } finally {
        await store.close();
      }
      return 0;
    }
    case 'list': {
      const store = await openInitialisedStore(location);
      try {
        const keys = await store.listApiKeys();
        if (opts.json === true) {
          // machine-readable: the public fields of each key (never the secret's hash or the row MAC)
          const rows = keys.map((k) => ({ id: k.id, name: k.name, tenant: k.tenant, scopes: k.scopes, createdAt: k.createdAt, revokedAt: k.revokedAt }));
          io.stdout.write(`${JSON.stringify({ apiKeys: rows })}\n`);
          return 0;
        }
        io.stdout.write('id                name                             tenant           scopes                  created                   revoked\n');
        for (const k of keys) {
          io.stdout.write(
            `${k.id}  ${k.name.padEnd(32).slice(0, 32)} ${k.tenant.padEnd(16)} ${k.scopes.join(',').padEnd(23)} ${new Date(k.createdAt).toISOString()}  ${k.revokedAt === null ? '-' : new Date(k.revokedAt).toISOString()}\n`,
          );
        }
      } finally {
        await store.close();
      }
      return 0;
    }
    case 'revoke': {
      const id = requireOption(opts.id, 'id');
      const store = await openInitialisedStore(location);
      try {
        await revokeApiKey(store, id);
        io.stdout.write(`Revoked API key ${id}\n`);
      } finally {
        await store.close();
      }
      return 0;
    }
    default:
      throw new CustosError('invalid_input', `unknown apikey subcommand ${JSON.stringify(sub)}; expected create, list or revoke`);
  }
}

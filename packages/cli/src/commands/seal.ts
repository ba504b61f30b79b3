import { type Io, parseOptions, requireOption } from '../io.js';
import { postToSigner } from '../postToSigner.js';

const HELP = `Usage: custos seal --admin-socket PATH

Seals a running signer (custos serve --admin-socket PATH) now: the key material is wiped from its
memory and it serves only status and unseal until an operator unseals it again. Requests in flight
either finish with their audit record or fail 503 sealed. Audited as sys.seal (detail.via
"admin-socket").
  --admin-socket PATH  the signer's admin socket. No API key is asked for: the socket file (mode
                       0600, owned by the server's user) is the operator's credential, as with
                       Vault's and Docker's control sockets. Over HTTP, POST /v1/sys/seal needs an
                       API key with the admin scope.`;

export async function sealCommand(argv: string[], io: Io): Promise<number> {
  const opts = parseOptions(argv, { 'admin-socket': { type: 'string' } });
  if (opts.help) {
    io.stdout.write(`${HELP}\n`);
    return 0;
  }
  const socketPath = requireOption(opts['admin-socket'], 'admin-socket');
  const answer = await postToSigner({ socketPath }, '/v1/sys/seal', undefined);
  io.stdout.write(answer.sealed === true ? 'Sealed\n' : 'Not sealed\n');
  return answer.sealed === true ? 0 : 1;
}

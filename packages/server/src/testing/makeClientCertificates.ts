import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/**
 * A test-only CA (`name-ca.crt`/`.key` in dir) and a client certificate it signed (`name-client.crt`/`.key`),
 * for mutual TLS tests (custos serve --tls-client-ca). Made with openssl, as makeSelfSignedCertificate.
 */
export function makeClientCertificates(dir: string, name: string): { caCert: string; clientCert: string; clientKey: string } {
  const caCert = join(dir, `${name}-ca.crt`);
  const caKey = join(dir, `${name}-ca.key`);
  const clientCert = join(dir, `${name}-client.crt`);
  const clientKey = join(dir, `${name}-client.key`);
  const csr = join(dir, `${name}-client.csr`);
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  run([
    'req',
    '-x509',
    ...EC,
    '-days',
    '2',
    '-subj',
    `/CN=${name} CA`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign',
    '-keyout',
    caKey,
    '-out',
    caCert,
  ]);
  run(['req', '-new', ...EC, '-subj', `/CN=${name} client`, '-keyout', clientKey, '-out', csr]);
  run(['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-CAcreateserial', '-days', '2', '-out', clientCert]);
  return { caCert, clientCert, clientKey };
}

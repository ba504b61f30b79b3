import { request } from 'node:http';
import { CustosError, type ErrorCode, ERROR_CODES } from '@custos/kernel';

/** Where a running signer is reached: its HTTP URL, or its admin socket (custos serve --admin-socket). */
export type SignerTarget = { url: string } | { socketPath: string };

/** A JSON answer of the sys routes (only the members the commands read). */
export interface SysAnswer {
  sealed?: boolean;
  progress?: { submitted: number; threshold: number };
  discarded?: number;
  error?: { code?: string; message?: string };
}

/**
 * The target named by `--url U` or `--admin-socket PATH` (exactly one). The admin socket is the
 * operator's channel: never delayed by other clients' failed unseals, and seal needs no API key.
 */
export function readSignerTarget(opts: { url?: string | undefined; 'admin-socket'?: string | undefined }): SignerTarget {
  const { url, 'admin-socket': socketPath } = opts;
  if ((url === undefined) === (socketPath === undefined))
    throw new CustosError('invalid_input', 'give exactly one of --url and --admin-socket', { details: { field: url === undefined ? 'url' : 'admin-socket' } });
  if (socketPath !== undefined) {
    if (socketPath === '')
      throw new CustosError('invalid_input', '--admin-socket: expected the path of the signer’s admin socket', { details: { field: 'admin-socket' } });
    return { socketPath };
  }
  if (!/^https?:\/\/[^/]+\/?$/.test(url ?? '')) throw new CustosError('invalid_input', '--url: expected http(s)://host:port', { details: { field: 'url' } });
  return { url: url as string };
}

/** POSTs `body` (JSON, or nothing) to `path` on the signer; a refusal is thrown as its CustosError code. */
export async function postToSigner(target: SignerTarget, path: string, body: unknown): Promise<SysAnswer> {
  const { status, text } = 'url' in target ? await postOverHttp(target.url, path, body) : await postOverSocket(target.socketPath, path, body);
  let answer: SysAnswer;
  try {
    answer = JSON.parse(text) as SysAnswer;
  } catch {
    answer = {};
  }
  if (status < 200 || status >= 300) {
    const code = answer.error?.code;
    const known = typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
    throw new CustosError(known ? (code as ErrorCode) : 'internal', answer.error?.message ?? `HTTP ${status}`);
  }
  return answer;
}

async function postOverHttp(url: string, path: string, body: unknown): Promise<{ status: number; text: string }> {
  let response: Response;
  try {
    response = await fetch(new URL(path, url), {
      method: 'POST',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (error) {
    throw new CustosError('signer_unreachable', `nothing answers at ${url}`, { details: { field: 'url' }, cause: error });
  }
  return { status: response.status, text: await response.text().catch(() => '') };
}

function postOverSocket(socketPath: string, path: string, body: unknown): Promise<{ status: number; text: string }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        method: 'POST',
        path,
        headers: { host: 'localhost', ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) => {
      const why =
        error.code === 'EACCES'
          ? 'permission denied (the socket is the operator’s: run as the user the server runs as)'
          : `nothing answers there (${error.code ?? error.message})`;
      reject(new CustosError('signer_unreachable', `--admin-socket: ${socketPath}: ${why}`, { details: { field: 'admin-socket' }, cause: error }));
    });
    req.end(payload);
  });
}

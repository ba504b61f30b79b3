import net from 'node:net';

/**
 * Opens a connection to 127.0.0.1:port and sends a POST's headers and part of its body
 * (Content-Length promises 1,000 bytes): a request that holds its in-flight slot until the socket
 * is destroyed. Resolves when written.
 */
export function sendPartialRequest(port: number, path: string, headers: Record<string, string> = {}): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      const head = Object.entries({ host: `127.0.0.1:${port}`, 'content-type': 'application/json', 'content-length': '1000', ...headers })
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('');
      socket.write(`POST ${path} HTTP/1.1\r\n${head}\r\n{"walletName":"partial",`, () => resolve(socket));
    });
    socket.on('error', () => undefined); // a reset from the server side is expected
    socket.once('error', reject);
  });
}

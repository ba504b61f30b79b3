import { createTestSigner, type TestSigner, type TestSignerOptions } from './serverTesting.js';

/** A real signer (createTestSigner: real SQLite, real kernel) listening on 127.0.0.1 at a free port. */
export async function listenTestSigner(options: TestSignerOptions = {}): Promise<TestSigner & { url: string }> {
  const signer = await createTestSigner(options);
  const url = await signer.app.listen({ host: '127.0.0.1', port: 0 });
  return Object.assign(signer, { url });
}

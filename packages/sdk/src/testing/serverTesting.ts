// The server's test helpers that `@custos/server/testing` does not re-export yet (createTestSigner,
// totpFromUri, stopChild): imported from the server's build output by a relative path, which
// resolves the same from src/testing (types) and dist/testing (runtime). Tests only.
export {
  createTestSigner,
  recordTestSecret,
  TEST_MNEMONIC,
  type TestSigner,
  type TestSignerOptions,
} from '../../../server/dist/testing/createTestSigner.js';
export { totpFromUri } from '../../../server/dist/testing/totpFromUri.js';

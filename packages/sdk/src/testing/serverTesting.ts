// The server's test helpers used by the SDK's tests (devDependency; tests only).
export {
  createTestSigner,
  recordTestSecret,
  TEST_MNEMONIC,
  TEST_PASSPHRASE,
  type TestSigner,
  type TestSignerOptions,
  highS,
  standInCard,
  totpFromUri,
} from '@custos/server/testing';

// The server's test helpers used by the SDK's tests (devDependency; tests only).
export {
  createTestSigner,
  RAW_HASHES_ALLOWED,
  UNCOUNTABLE_PRESENT,
  recordTestSecret,
  TEST_MNEMONIC,
  TEST_PASSPHRASE,
  type TestSigner,
  type TestSignerOptions,
  highS,
  standInCard,
  totpFromUri,
} from '@custos/server/testing';

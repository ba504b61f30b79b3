// Test helpers shared with the other packages' tests (`@custos/server/testing`); not part of the API.
export {
  createTestSigner,
  dumpTestSchema,
  RAW_HASHES_ALLOWED,
  UNCOUNTABLE_PRESENT,
  recordResponsesOfInject,
  recordTestResponse,
  recordTestSecret,
  TEST_MNEMONIC,
  TEST_PASSPHRASE,
  type TestSigner,
  type TestSignerOptions,
  testArtifactsDir,
  testPostgresUrl,
  testStoreKind,
} from './createTestSigner.js';
export { retryOverloaded } from './retryOverloaded.js';
export { totpFromUri } from './totpFromUri.js';
export { type Anvil, ANVIL_BIN, startAnvil } from './startAnvil.js';
export { type CliResult, CUSTOS_BIN, REPO_ROOT, runCustos, trackChild } from './runCustos.js';
export { makeSelfSignedCertificate, opensslAvailable } from './makeSelfSignedCertificate.js';
export { makeClientCertificates } from './makeClientCertificates.js';
export {
  type AuthenticationKnobs,
  type AuthenticationResponse,
  type CreationOptionsJSON,
  type RegistrationKnobs,
  type RegistrationResponse,
  type RequestOptionsJSON,
  SoftAuthenticator,
  type SoftCredential,
} from './softAuthenticator.js';
export { highS, type StandInCard, standInCard } from './standInCard.js';
export { codeOf, type MailServer, type ReceivedMail, startMailServer } from './startMailServer.js';
export { startTestDelivery, type TestDelivery } from './startTestDelivery.js';

// Test helpers shared with the other packages' tests (`@custos/server/testing`); not part of the API.
export { recordTestSecret, testArtifactsDir, testPostgresUrl, testStoreKind } from './createTestSigner.js';

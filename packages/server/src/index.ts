export { buildApp, type BuildAppOptions } from './buildApp.js';
export {
  assertOpsAddressAllowed,
  assertPlainHttpAllowed,
  type DeliveryOptions,
  startServer,
  type StartServerOptions,
  type RunningServer,
} from './startServer.js';
export { signWebhookBody } from './delivery/webhookChannel.js';
export { createListener, DEFAULT_TIMEOUTS, type Listener, type ListenerOptions, type ListenerTimeouts, type TlsFiles } from './createListener.js';
export { parsePublicUrl } from './checkHostAndOrigin.js';
export { openStore, parseStoreUrl, DB_FILE, type StoreLocation, type OpenedStore } from './openStore.js';
export { PostgresStore, type PostgresStoreOptions } from './stores/postgres/PostgresStore.js';
export { GroupCommit } from './stores/groupCommit.js';
export { SqliteStore, type SqliteStoreOptions } from './stores/sqlite/SqliteStore.js';
export { createLogger, REDACT_PATHS } from './createLogger.js';
export { toCustosError, errorBody } from './errorHandler.js';
export { parseTrustProxy } from './parseTrustProxy.js';
export { addressMatcher, parseAllowFrom } from './parseAllowFrom.js';
export { parseListenAddress } from './parseListenAddress.js';
export { type AdminSocket, isAdminSocketRequest, listenAdminSocket } from './adminSocket.js';
export { groupClientAddress } from './groupClientAddress.js';
export { ADMIN_SOCKET_CLIENT, unsealClientOf } from './unsealClientOf.js';
export type { PageOptions } from './pages/pageRoutes.js';
export { readPageOptions } from './pages/readPageOptions.js';
export { parseTokenList, readTokenList, type KnownToken, type TokenList } from './pages/tokenList.js';
export { assertHttpUrl } from './assertHttpUrl.js';

export { buildApp, type BuildAppOptions } from './buildApp.js';
export { startServer, type StartServerOptions, type RunningServer } from './startServer.js';
export { openStore, parseStoreUrl, DB_FILE, type StoreLocation, type OpenedStore } from './openStore.js';
export { PostgresStore, type PostgresStoreOptions } from './stores/postgres/PostgresStore.js';
export { GroupCommit } from './stores/groupCommit.js';
export { SqliteStore, type SqliteStoreOptions } from './stores/sqlite/SqliteStore.js';
export { createLogger, REDACT_PATHS } from './createLogger.js';
export { toCustosError, errorBody } from './errorHandler.js';

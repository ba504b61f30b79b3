export { buildApp, type BuildAppOptions } from './buildApp.js';
export { startServer, type StartServerOptions, type RunningServer } from './startServer.js';
export { openStore, DB_FILE } from './openStore.js';
export { SqliteStore, type SqliteStoreOptions } from './stores/sqlite/SqliteStore.js';
export { createLogger, REDACT_PATHS } from './createLogger.js';
export { toCustosError, errorBody } from './errorHandler.js';

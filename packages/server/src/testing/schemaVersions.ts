/**
 * Every store migration's version, in order: what `schemaVersions()` of a fresh or fully upgraded
 * store must list. One list for every test (a new migration adds its number here once), written out
 * rather than derived from the migration modules, so that a migration lost from either store's list
 * fails the tests.
 */
export const ALL_SCHEMA_VERSIONS: readonly number[] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23];

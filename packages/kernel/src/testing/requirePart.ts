/**
 * The rule for a test file that needs a part this machine may lack (SoftHSM2, Chromium): under
 * CI=true the part must be there, so its absence throws (the file fails); elsewhere the file skips,
 * and says so loudly on stderr, so that a skipped suite is not taken for a pass. Returns the reason
 * to give to describe()'s `skip`.
 */
export function skipUnlessCi(missing: string, { tests, part }: { tests: string; part: string }): string {
  if (process.env.CI === 'true') throw new Error(`${missing}: ${tests} need ${part} in CI`);
  process.stderr.write(`\n*** SKIPPED ${tests}: ${missing} ***\n\n`);
  return missing;
}

import { CustosError } from '@custos/kernel';
import { hasInvisible } from './html.js';
import type { PageOptions } from './pageRoutes.js';
import { readTokenList } from './tokenList.js';

/** A language tag as the `lang` attribute takes it (BCP 47's shape: en, de-CH, zh-Hant-TW). */
const LANG = /^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,4}$/;

/**
 * The pages' options from the operator's command line (custos serve --token-list FILE,
 * --page-brand NAME, --page-lang TAG), checked: a readable, valid token list; a brand of 1–64
 * characters with no control, invisible or direction-changing one (see showText); a language tag.
 */
export function readPageOptions(options: { tokenListFile?: string | undefined; brandName?: string | undefined; lang?: string | undefined }): PageOptions {
  const { tokenListFile, brandName, lang } = options;
  if (brandName !== undefined && (brandName.trim() === '' || brandName.length > 64 || hasInvisible(brandName) || brandName.includes('\n')))
    throw new CustosError('invalid_input', '--page-brand: expected 1 to 64 printable characters', { details: { field: 'page-brand' } });
  if (lang !== undefined && !LANG.test(lang))
    throw new CustosError('invalid_input', '--page-lang: expected a language tag such as en or de-CH', { details: { field: 'page-lang' } });
  return {
    ...(tokenListFile === undefined ? {} : { tokenList: readTokenList(tokenListFile) }),
    ...(brandName === undefined ? {} : { brandName }),
    ...(lang === undefined ? {} : { lang }),
  };
}

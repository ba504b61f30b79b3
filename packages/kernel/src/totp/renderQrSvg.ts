import QRCode from 'qrcode';
import { invalidInput } from '../errors.js';

/**
 * An SVG QR code of `text` (error correction M, 2-module quiet zone), for showing an otpauth URI at
 * enrolment. The SVG encodes whatever the text holds, secrets included: serve it once, never store it.
 */
export async function renderQrSvg(text: string): Promise<string> {
  if (typeof text !== 'string' || text.length === 0) throw invalidInput('text', 'a non-empty string');
  return QRCode.toString(text, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
}

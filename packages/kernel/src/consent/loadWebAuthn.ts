type WebAuthn = typeof import('@simplewebauthn/server');

let loading: Promise<WebAuthn> | undefined;

/**
 * @simplewebauthn/server, imported on first use: it is the costliest of the kernel's imports (some
 * 0.4 s of CPU time on a CI machine, more than viem), and most processes that load the kernel never
 * run a WebAuthn ceremony — every `custos` command but serve, a signer whose owners and admins use
 * no passkey, most test files. Call it outside a ceremony's try/catch: a module that fails to load is
 * an error of the signer, never a refused passkey.
 */
export function loadWebAuthn(): Promise<WebAuthn> {
  loading ??= import('@simplewebauthn/server');
  return loading;
}

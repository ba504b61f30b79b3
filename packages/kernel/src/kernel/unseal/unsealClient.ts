import { invalidInput } from '../../errors.js';

/**
 * Who an unseal attempt comes from, as the shell names it: `key` is an opaque string (the server
 * derives it from the client's address, IPv6 grouped per /64; `admin-socket` for its operator
 * socket), the unit of the unseal back-off and of the queue bound. `operator`: the attempt comes
 * over a channel only an operator can reach (the admin socket, the start-up credential, an
 * in-process caller); it is served before queued network attempts, never bounded, and a PKCS#11
 * PIN from it is tried even when the token says a wrong one would lock it.
 */
export interface UnsealClient {
  key: string;
  operator: boolean;
}

/** The in-process caller (start-up credential, tests, tools holding the kernel object): an operator. */
export const LOCAL_UNSEAL_CLIENT: UnsealClient = Object.freeze({ key: 'local', operator: true });

/** Longest client key kept (characters); the server's keys are far shorter. */
export const MAX_UNSEAL_CLIENT_KEY_LENGTH = 128;

export function assertUnsealClient(client: UnsealClient): void {
  // The key: a non-empty string of bounded length
  if (typeof client?.key !== 'string' || client.key.length === 0 || client.key.length > MAX_UNSEAL_CLIENT_KEY_LENGTH)
    throw invalidInput('client.key', `a string of 1..${MAX_UNSEAL_CLIENT_KEY_LENGTH} characters`, typeof client?.key);
  // The channel: a boolean
  if (typeof client.operator !== 'boolean') throw invalidInput('client.operator', 'a boolean', typeof client.operator);
}

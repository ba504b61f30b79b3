import type { UnsealClient } from '@custos/kernel';
import type { FastifyRequest } from 'fastify';
import { isAdminSocketRequest } from './adminSocket.js';
import { groupClientAddress } from './groupClientAddress.js';

/** The admin socket's own throttle key: an operator, never delayed by network clients' failures. */
export const ADMIN_SOCKET_CLIENT: UnsealClient = Object.freeze({ key: 'admin-socket', operator: true });

/**
 * Who an unseal request comes from, for the kernel's per-client back-off: the admin socket, or the
 * client's address as resolved with --trust-proxy (request.ip: the socket's address unless the
 * socket is a trusted proxy), IPv6 grouped per /64.
 */
export function unsealClientOf(request: FastifyRequest): UnsealClient {
  if (isAdminSocketRequest(request)) return ADMIN_SOCKET_CLIENT;
  return { key: `ip:${groupClientAddress(request.ip)}`, operator: false };
}

import { lookup } from 'node:dns/promises';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent, buildConnector } from 'undici';

/**
 * Where a webhook may point. A subscription is an admin's instruction to make this service send
 * requests somewhere: without a guard it reaches whatever the service's network reaches (cloud
 * metadata at 169.254.169.254, the database, an admin panel on localhost). Outside development and
 * test, every address the host resolves to must be public unicast, unless the operator allows
 * private targets (WEBHOOK_ALLOW_PRIVATE_URLS=true).
 *
 * Checked when the subscription is made, and at every attempt where it matters: the relay connects
 * through webhookAgent(), whose connector resolves the name once, vets every address it got, connects
 * only to those, and checks the peer address of the connected socket again. There is no second
 * lookup between the check and the connection for a name to answer differently (DNS rebinding).
 */
export interface UrlPolicy {
  allowPrivate: boolean;
  /** Resolves a host name to its addresses (the system resolver; tests inject their own). */
  resolve?: Resolve;
}

export type Resolve = (host: string) => Promise<string[]>;

/** The system resolver (getaddrinfo: /etc/hosts, then DNS), every address. */
export const systemResolve: Resolve = async (host) =>
  (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** How long the subscription check waits for a name to resolve. */
const SUBSCRIBE_LOOKUP_TIMEOUT_MS = 5_000;

/** A target the policy refuses, as the relay records it (`refused: …`). */
export class RefusedTargetError extends Error {
  override readonly name = 'RefusedTargetError';
}

/**
 * Why this address may not be a target, or undefined when it is public unicast. IPv4-mapped IPv6
 * (`::ffff:127.0.0.1`) is judged as its IPv4 address; IPv4-compatible IPv6 (`::/96`, deprecated by
 * RFC 4291, e.g. `::127.0.0.1`) is refused whole, as are NAT64, 6to4 and Teredo forms (not unicast
 * in ipaddr.js's terms), which embed an IPv4 address too.
 */
export function refuseAddress(address: string): string | undefined {
  if (!ipaddr.isValid(address)) return `${address} is not an IP address`;
  let ip = ipaddr.parse(address);
  if (ip.kind() === 'ipv6') {
    const v6 = ip as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) ip = v6.toIPv4Address();
    else if (v6.parts.slice(0, 6).every((p) => p === 0)) {
      return `resolves to ${address}, an IPv4-compatible IPv6 address (::/96) (set WEBHOOK_ALLOW_PRIVATE_URLS=true to allow private targets)`;
    }
  }
  const range = ip.range();
  if (range !== 'unicast') {
    return `resolves to ${address}, a ${range} address (set WEBHOOK_ALLOW_PRIVATE_URLS=true to allow private targets)`;
  }
  return undefined;
}

/** `localhost` and `*.localhost` always mean this machine (RFC 6761 §6.3), whatever a resolver says. */
const isLocalhostName = (host: string): boolean => /(^|\.)localhost\.?$/i.test(host);

/** The URL's host without IPv6 brackets. */
const bareHost = (url: URL): string => url.hostname.replace(/^\[|\]$/g, '');

/**
 * What can be judged without a lookup: an absolute http(s) URL without credentials, and, when private
 * targets are not allowed, neither a `localhost` name nor a literal address that is not public.
 * The relay runs this before every attempt; the connector does the rest.
 */
export function refuseUrlShape(raw: string, policy: UrlPolicy): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be an absolute URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an http(s) URL';
  if (url.username || url.password) return 'must not carry credentials';
  if (policy.allowPrivate) return undefined;
  const host = bareHost(url);
  if (isLocalhostName(host)) {
    return `resolves to a loopback address (${host}) (set WEBHOOK_ALLOW_PRIVATE_URLS=true to allow private targets)`;
  }
  return ipaddr.isValid(host) ? refuseAddress(host) : undefined;
}

/**
 * Resolves a host name once and vets every address: all of them, or none (a name with one private
 * address among public ones could be steered to it). Rejects with RefusedTargetError when refused,
 * with the resolver's error when it fails, and with the signal's reason when it is aborted first.
 */
export async function resolveVetted(
  host: string,
  policy: UrlPolicy,
  signal?: AbortSignal,
): Promise<string[]> {
  if (ipaddr.isValid(host)) {
    const refused = policy.allowPrivate ? undefined : refuseAddress(host);
    if (refused) throw new RefusedTargetError(refused);
    return [host];
  }
  if (!policy.allowPrivate && isLocalhostName(host)) {
    throw new RefusedTargetError(refuseUrlShape(`http://${host}/`, policy));
  }
  const resolving = (policy.resolve ?? systemResolve)(host);
  let addresses: string[];
  if (signal) {
    signal.throwIfAborted();
    let onAbort = (): void => undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      addresses = await Promise.race([resolving, aborted]);
    } finally {
      signal.removeEventListener('abort', onAbort);
      resolving.catch(() => undefined);
    }
  } else addresses = await resolving;
  if (!addresses.length) throw new Error(`${host} has no address`);
  if (!policy.allowPrivate) {
    for (const address of addresses) {
      const refused = refuseAddress(address);
      if (refused) throw new RefusedTargetError(refused);
    }
  }
  return addresses;
}

/** Why the URL is refused, or undefined when it may be used: the check made when subscribing. */
export async function refuseWebhookUrl(
  raw: string,
  policy: UrlPolicy,
  signal: AbortSignal = AbortSignal.timeout(SUBSCRIBE_LOOKUP_TIMEOUT_MS),
): Promise<string | undefined> {
  const shape = refuseUrlShape(raw, policy);
  if (shape || policy.allowPrivate) return shape;
  const host = bareHost(new URL(raw));
  try {
    await resolveVetted(host, policy, signal);
    return undefined;
  } catch (err) {
    if (err instanceof RefusedTargetError) return err.message;
    return `its host ${host} does not resolve`;
  }
}

/**
 * The lookup the connector gives the socket: resolveVetted, answered in the shape net asks for (one
 * address, or all of them when it tries each family in turn). Bounded by `timeoutMs`; the attempt's
 * own abort signal ends the request at its deadline in any case.
 */
function vettingLookup(policy: UrlPolicy, timeoutMs: number): LookupFunction {
  return (hostname, options, callback) => {
    resolveVetted(hostname, policy, AbortSignal.timeout(timeoutMs)).then(
      (addresses) => {
        const wanted = options.family === 4 || options.family === 6 ? options.family : 0;
        const list = addresses
          .map((address) => ({ address, family: ipaddr.parse(address).kind() === 'ipv6' ? 6 : 4 }))
          .filter((a) => !wanted || a.family === wanted);
        if (!list.length) {
          const err = Object.assign(new Error(`${hostname} has no IPv${wanted} address`), {
            code: 'ENOTFOUND',
          });
          (callback as (e: Error) => void)(err);
        } else if (options.all) {
          (callback as (e: null, a: { address: string; family: number }[]) => void)(null, list);
        } else callback(null, list[0].address, list[0].family);
      },
      (err: Error) => (callback as (e: Error) => void)(err),
    );
  };
}

/**
 * The dispatcher every attempt goes through: connections are made only to vetted addresses (the
 * lookup above), and the address actually connected to is vetted again before a byte of the request
 * is sent (a literal address in the URL is never looked up, and this also covers anything that
 * would bypass the lookup). With private targets allowed it is a plain agent with the same lookup.
 */
export function webhookAgent(policy: UrlPolicy, connectTimeoutMs: number): Agent {
  const connect = buildConnector({
    timeout: connectTimeoutMs,
    lookup: vettingLookup(policy, connectTimeoutMs),
  });
  return new Agent({
    connect: (options, callback) =>
      connect(options, (err, socket) => {
        if (err || !socket) return callback(err ?? new Error('no socket'), null);
        const peer = socket.remoteAddress ?? '';
        const refused = policy.allowPrivate ? undefined : refuseAddress(peer);
        if (!refused) return callback(null, socket);
        socket.destroy();
        callback(new RefusedTargetError(`connected to ${peer}, refused: ${refused}`), null);
      }),
  });
}

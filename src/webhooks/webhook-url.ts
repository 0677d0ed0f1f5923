import { lookup } from 'node:dns/promises';
import ipaddr from 'ipaddr.js';

/**
 * Where a webhook may point. A subscription is an admin's instruction to make this service send
 * requests somewhere: without a guard it reaches whatever the service's network reaches (cloud
 * metadata at 169.254.169.254, the database, an admin panel on localhost). Outside development and
 * test, every address the host resolves to must be public unicast, unless the operator allows
 * private targets (WEBHOOK_ALLOW_PRIVATE_URLS=true). Checked when the subscription is made and
 * again before every attempt (a name can resolve elsewhere later).
 */
export interface UrlPolicy {
  allowPrivate: boolean;
}

/** Why the URL is refused, or undefined when it may be used. */
export async function refuseWebhookUrl(
  raw: string,
  policy: UrlPolicy,
): Promise<string | undefined> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be an absolute URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an http(s) URL';
  if (url.username || url.password) return 'must not carry credentials';
  if (policy.allowPrivate) return undefined;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  try {
    addresses = ipaddr.isValid(host)
      ? [host]
      : (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
  } catch {
    return `its host ${host} does not resolve`;
  }
  for (const address of addresses) {
    let ip = ipaddr.parse(address);
    if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) {
      ip = (ip as ipaddr.IPv6).toIPv4Address();
    }
    const range = ip.range();
    if (range !== 'unicast') {
      return `resolves to ${address}, a ${range} address (set WEBHOOK_ALLOW_PRIVATE_URLS=true to allow private targets)`;
    }
  }
  return undefined;
}

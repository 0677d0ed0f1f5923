import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { fetch } from 'undici';
import { EnvError, loadEnv } from '../../src/config/env';
import { sendWebhook } from '../../src/webhooks/webhook-relay';
import {
  refuseAddress,
  refuseWebhookUrl,
  type Resolve,
  type UrlPolicy,
  webhookAgent,
} from '../../src/webhooks/webhook-url';

/** A TCP server on 127.0.0.1 that counts connections and answers every request 204. */
async function target(): Promise<{ port: number; connections: () => number; server: Server }> {
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    socket.on('data', () =>
      socket.end('HTTP/1.1 204 No Content\r\nconnection: close\r\ncontent-length: 0\r\n\r\n'),
    );
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, connections: () => connections, server };
}

const delivery = (url: string) => ({
  url,
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  event_id: '00000000-0000-4000-8000-000000000001',
  body: '{}',
  traceparent: null,
});

/** A name that answers a public address first and loopback afterwards (DNS rebinding). */
function rebinding(): { resolve: Resolve; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    resolve: async (host) => {
      calls.push(host);
      return calls.length === 1 ? ['93.184.216.34'] : ['127.0.0.1'];
    },
  };
}

describe('webhook URL guard', () => {
  let t: Awaited<ReturnType<typeof target>>;
  beforeAll(async () => {
    t = await target();
  });
  afterAll(() => new Promise<void>((resolve) => t.server.close(() => resolve())));

  it('refuses IPv4-compatible IPv6 (::/96) and other forms of loopback and private targets', async () => {
    const strict: UrlPolicy = { allowPrivate: false, resolve: async () => ['93.184.216.34'] };
    for (const url of [
      'http://[::127.0.0.1]/x',
      'http://[::7f00:1]/x',
      'http://[::10.0.0.1]/x',
      'http://[::ffff:127.0.0.1]/x',
      'http://[::1]/x',
      'http://127.0.0.1/x',
      'http://2130706433/x',
      // Whatever a resolver says, localhost names are this machine (RFC 6761).
      'http://localhost/x',
      'http://LOCALHOST./x',
      'http://api.localhost/x',
    ]) {
      expect(await refuseWebhookUrl(url, strict)).toMatch(/resolves to/);
    }
    // The URL parser writes [::127.0.0.1] as [::7f00:1].
    expect(refuseAddress('::7f00:1')).toMatch(/IPv4-compatible/);
    expect(refuseAddress('::127.0.0.1')).toBeDefined();
    expect(refuseAddress('2606:2800:220:1:248:1893:25c8:1946')).toBeUndefined();
    expect(await refuseWebhookUrl('https://shop.example/hook', strict)).toBeUndefined();
    // One private address among public ones refuses the name.
    expect(
      await refuseWebhookUrl('https://shop.example/hook', {
        allowPrivate: false,
        resolve: async () => ['93.184.216.34', '10.0.0.5'],
      }),
    ).toMatch(/10\.0\.0\.5/);
  });

  it('DNS rebinding: vetted public when subscribing, loopback at the attempt → refused, nothing connects there', async () => {
    const dns = rebinding();
    const policy: UrlPolicy = { allowPrivate: false, resolve: dns.resolve };
    const url = `http://rebind.example:${t.port}/hook`;
    expect(await refuseWebhookUrl(url, policy)).toBeUndefined();
    const agent = webhookAgent(policy, 2_000);
    try {
      const result = await sendWebhook(delivery(url), agent, policy);
      expect(result).toMatchObject({ ok: false, status: null });
      expect(!result.ok && result.error).toMatch(/^refused: url resolves to 127\.0\.0\.1/);
      expect(dns.calls).toEqual(['rebind.example', 'rebind.example']);
      expect(t.connections()).toBe(0);
    } finally {
      await agent.close();
    }
  });

  it('connects to the address the guard resolved, resolving once per connection', async () => {
    // Private allowed (development and test): the guard still resolves, and the socket goes where
    // it said; `vetted.invalid` exists in no DNS, so nothing else can have resolved it.
    const calls: string[] = [];
    const policy: UrlPolicy = {
      allowPrivate: true,
      resolve: async (host) => (calls.push(host), ['127.0.0.1']),
    };
    const agent = webhookAgent(policy, 2_000);
    try {
      const before = t.connections();
      const result = await sendWebhook(delivery(`http://vetted.invalid:${t.port}/`), agent, policy);
      expect(result).toEqual({ ok: true, status: 204 });
      expect(calls).toEqual(['vetted.invalid']);
      expect(t.connections()).toBe(before + 1);
    } finally {
      await agent.close();
    }
  });

  it('checks the peer address actually connected to: a literal loopback URL sent straight through the agent is refused', async () => {
    const policy: UrlPolicy = { allowPrivate: false };
    const agent = webhookAgent(policy, 2_000);
    let requests = 0;
    const before = t.connections();
    t.server.on('connection', (s) => s.on('data', () => requests++));
    try {
      await expect(
        fetch(`http://127.0.0.1:${t.port}/`, { method: 'POST', body: 'x', dispatcher: agent }),
      ).rejects.toMatchObject({ cause: { name: 'RefusedTargetError' } });
      // The TCP handshake happened; not a byte of the request was sent.
      expect(t.connections()).toBe(before + 1);
      await new Promise((r) => setTimeout(r, 100));
      expect(requests).toBe(0);
    } finally {
      await agent.close();
    }
  });

  it('puts the lookup under the attempt deadline: a resolver that never answers ends the attempt on time', async () => {
    const policy: UrlPolicy = { allowPrivate: false, resolve: () => new Promise(() => undefined) };
    const agent = webhookAgent(policy, 60_000);
    try {
      const started = Date.now();
      const result = await sendWebhook(delivery('http://hangs.example/'), agent, policy, 300);
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(result).toEqual({ ok: false, status: null, error: 'no answer within 0.3 s' });
    } finally {
      await agent.destroy();
    }
  });

  it('requires a lease longer than an attempt may take, and a per-subscription cap within the pool', () => {
    const base = { JWT_SECRET: 'x'.repeat(32) };
    expect(() => loadEnv({ ...base, WEBHOOK_LEASE_SECONDS: '12' })).toThrow(EnvError);
    expect(loadEnv({ ...base, WEBHOOK_LEASE_SECONDS: '15' }).WEBHOOK_LEASE_SECONDS).toBe(15);
    expect(loadEnv(base)).toMatchObject({
      WEBHOOK_RELAY_CONCURRENCY: 16,
      WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION: 4,
      OUTBOX_RETENTION_HOURS: 168,
    });
    expect(() =>
      loadEnv({
        ...base,
        WEBHOOK_RELAY_CONCURRENCY: '2',
        WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION: '3',
      }),
    ).toThrow(/WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION/);
    expect(() => loadEnv({ ...base, OUTBOX_RETENTION_HOURS: '0' })).toThrow(
      /OUTBOX_RETENTION_HOURS/,
    );
  });
});

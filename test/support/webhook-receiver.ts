import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface Received {
  /** The request path: one per subscription pointing here. */
  path: string;
  webhookId: string;
  type: string;
  orderId: string;
  version: number;
  status: string;
  at: number;
  /** What this receiver answered. */
  answered: number;
  signatureValid: boolean;
  traceparent?: string;
}

/**
 * A real HTTP receiver, as a shop would run one: every request's signature is verified with the
 * Standard Webhooks library (the way its documentation tells receivers to), then recorded. `answer`
 * decides the status per request (e.g. 500 for the first attempts), `delayMs` how long it waits.
 */
export class WebhookReceiver {
  readonly received: Received[] = [];
  answer: (webhookId: string, attempt: number) => number = () => 204;
  delayMs: (webhookId: string, attempt: number) => number = () => 0;
  private server?: Server;
  /** Requests per (path, webhook-id), counted when they arrive (a hung one counts too). */
  private readonly arrivals = new Map<string, number>();
  private secrets: string[] = [];

  async start(): Promise<string> {
    this.server = createServer(
      (req, res) => void this.handle(req).then((status) => res.writeHead(status).end()),
    );
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Signatures verify against any of these secrets (one per subscription pointing here). */
  trust(secret: string): void {
    this.secrets.push(secret);
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  attemptsOf(webhookId: string): Received[] {
    return this.received.filter((r) => r.webhookId === webhookId);
  }

  /** Deliveries answered 2xx: what the shop processed. */
  accepted(): Received[] {
    return this.received.filter((r) => r.answered >= 200 && r.answered < 300);
  }

  async waitFor(predicate: () => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error('waited in vain for webhook deliveries');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private async handle(req: IncomingMessage): Promise<number> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const headers = Object.fromEntries(
      Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : (v ?? '')]),
    );
    const signatureValid = this.secrets.some((secret) => {
      try {
        new Webhook(secret).verify(body, headers);
        return true;
      } catch {
        return false;
      }
    });
    const event = JSON.parse(body) as {
      id: string;
      type: string;
      data: { order: { id: string; version: number; status: string } };
    };
    const webhookId = headers['webhook-id'];
    const arrival = `${req.url} ${webhookId}`;
    const attempt = (this.arrivals.get(arrival) ?? 0) + 1;
    this.arrivals.set(arrival, attempt);
    const delay = this.delayMs(webhookId, attempt);
    // Unreferenced: a request hung on purpose must not keep the test process alive.
    if (delay) await new Promise((r) => setTimeout(r, delay).unref());
    const answered = signatureValid ? this.answer(webhookId, attempt) : 401;
    this.received.push({
      path: req.url ?? '',
      webhookId,
      type: event.type,
      orderId: event.data.order.id,
      version: event.data.order.version,
      status: event.data.order.status,
      at: Date.now(),
      answered,
      signatureValid,
      traceparent: headers.traceparent || undefined,
    });
    return answered;
  }
}

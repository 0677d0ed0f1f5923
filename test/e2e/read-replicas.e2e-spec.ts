import { setTimeout as sleep } from 'node:timers/promises';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { OrderClient } from '../../client/src/index';
import { createApp } from '../../src/app.factory';
import { loadEnv } from '../../src/config/env';
import { createProduct } from '../support/fixtures';
import { type Account, account, expectProblem } from '../support/http';
import { describeWithStandby, type StandbyPair, startStandbyPair } from '../support/standby-pair';
import type { TestApp } from '../support/test-app';

/** How late the standby applies WAL: every write is certainly not there yet when read back at once. */
const APPLY_DELAY_MS = 1500;

const describeStandby = describeWithStandby();

describeStandby('reads from a streaming standby (API.md §12)', () => {
  let pair: StandbyPair;
  let t: TestApp;
  let app: NestFastifyApplication;
  let admin: Account;

  beforeAll(async () => {
    pair = await startStandbyPair({ applyDelayMs: APPLY_DELAY_MS });
    const env = loadEnv({
      NODE_ENV: 'test',
      JWT_SECRET: 'test-secret-that-is-long-enough-for-hs256-0123456789',
      DB_POOL_SIZE: '20',
      LOG_LEVEL: 'silent',
      RATE_LIMIT_MAX: '1000000',
      AUTH_RATE_LIMIT_MAX: '1000000',
      CORS_ORIGINS: 'https://shop.example',
      DATABASE_READ_URLS: pair.standbyUrl,
      // The standby lags by its apply delay by construction: it must still take reads.
      READ_REPLICA_MAX_LAG_MS: '30000',
      ORDER_HOLD_SECONDS: '2',
      ORDER_EXPIRY_SWEEP_SECONDS: '3600',
    });
    app = await createApp({ env, databaseUrl: pair.primaryUrl });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.getHttpServer().address();
    const baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    t = {
      app,
      baseUrl,
      databaseUrl: pair.primaryUrl,
      http: () => request(baseUrl),
      db: app.get(DataSource),
      close: () => app.close(),
    };
    admin = await account(t, 'admin');
    await standbyTakesReads();
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await pair?.close();
  }, 60_000);

  /** db_reads_total by target, from /metrics. */
  async function reads(): Promise<{ primary: number; standby: number }> {
    const text = (await t.http().get('/metrics').expect(200)).text;
    const count = (target: string) =>
      Number(
        new RegExp(`^db_reads_total\\{target="${target}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0,
      );
    return { primary: count('primary'), standby: count('standby-0') };
  }

  /** Waits until the standby has replayed everything the primary has written so far. */
  async function caughtUp(): Promise<void> {
    const target = (await pair.positions()).primary;
    const lsn = (s: string) => {
      const [h, l] = s.split('/');
      return (BigInt(`0x${h}`) << 32n) + BigInt(`0x${l}`);
    };
    for (let i = 0; i < 200; i++) {
      if (lsn((await pair.positions()).standby) >= lsn(target)) return;
      await sleep(100);
    }
    throw new Error('the standby did not catch up');
  }

  /** Waits until a read without a token is answered by the standby. */
  async function standbyTakesReads(): Promise<void> {
    for (let i = 0; i < 300; i++) {
      const before = await reads();
      await t.http().get('/api/v1/products').expect(200);
      if ((await reads()).standby > before.standby) return;
      await sleep(100);
    }
    throw new Error('the standby never took a read');
  }

  async function changedProduct(): Promise<{
    id: string;
    before: Record<string, any>;
    after: Record<string, any>;
    token: string;
  }> {
    const created = await createProduct(t, admin, { priceCents: 1000 });
    await caughtUp();
    const res = await t
      .http()
      .patch(`/api/v1/products/${created.id}`)
      .set(admin.auth)
      .set('If-Match', created.etag)
      .send({ priceCents: 2000 })
      .expect(200);
    return {
      id: created.id,
      before: created.body,
      after: { ...res.body, etag: res.headers.etag },
      token: res.headers['consistency-token'],
    };
  }

  it('gives every successful write a Consistency-Token, exposed to browsers, and only those', async () => {
    const created = await t
      .http()
      .post('/api/v1/products')
      .set(admin.auth)
      .set('Origin', 'https://shop.example')
      .send({
        sku: `CT-${Date.now()}`,
        slug: `ct-${Date.now()}`,
        name: 'Token',
        priceCents: 100,
        currency: 'EUR',
        stock: 1,
      })
      .expect(201);
    expect(created.headers['consistency-token']).toMatch(/^[0-9a-f]{16}$/);
    expect(created.headers['access-control-expose-headers']).toContain('Consistency-Token');
    const read = await t.http().get(`/api/v1/products/${created.body.id}`).expect(200);
    expect(read.headers['consistency-token']).toBeUndefined();
    // A refused write carries none.
    const refused = await t
      .http()
      .patch(`/api/v1/products/${created.body.id}`)
      .set(admin.auth)
      .send({ priceCents: 5 })
      .expect(428);
    expect(refused.headers['consistency-token']).toBeUndefined();
  });

  it('answers a malformed Consistency-Token with 400 VALIDATION_FAILED naming the header', async () => {
    const res = await t
      .http()
      .get('/api/v1/products')
      .set('Consistency-Token', 'not-a-token')
      .expect(400);
    expectProblem(res, 'VALIDATION_FAILED');
    expect(res.body.errors).toEqual([expect.objectContaining({ field: 'Consistency-Token' })]);
  });

  it('a read with the token sees the write at once; a read without it is served by the standby', async () => {
    const { id, before, after, token } = await changedProduct();
    expect(token).toMatch(/^[0-9a-f]{16}$/);

    const r0 = await reads();
    const stale = await t.http().get(`/api/v1/products/${id}`).expect(200);
    const r1 = await reads();
    expect(r1.standby - r0.standby).toBe(1);
    // The standby applies WAL 1.5 s late: without the token, the old version.
    expect(stale.body.version).toBe(before.version);
    expect(stale.body.priceCents).toBe(1000);

    const fresh = await t
      .http()
      .get(`/api/v1/products/${id}`)
      .set('Consistency-Token', token)
      .expect(200);
    const r2 = await reads();
    expect(fresh.body.version).toBe(after.version);
    expect(fresh.body.priceCents).toBe(2000);
    expect(r2.primary - r1.primary).toBe(1);
    expect(r2.standby).toBe(r1.standby);

    // Once the standby has replayed it, the token no longer keeps the read off the standby.
    await caughtUp();
    await sleep(600); // two health checks
    const later = await t
      .http()
      .get(`/api/v1/products/${id}`)
      .set('Consistency-Token', token)
      .expect(200);
    expect(later.body.version).toBe(after.version);
    expect((await reads()).standby).toBe(r2.standby + 1);
  });

  it('conditional reads never answer stale: a newer ETag goes to the primary, lists too', async () => {
    const list0 = await t.http().get('/api/v1/products?limit=100').expect(200);
    const { id, after } = await changedProduct();

    // The client holds the new version (e.g. from the PATCH): 304, not the standby's older 200.
    const r0 = await reads();
    const revalidated = await t
      .http()
      .get(`/api/v1/products/${id}`)
      .set('If-None-Match', after.etag)
      .expect(304);
    expect(revalidated.headers.etag).toBe(after.etag);
    expect((await reads()).standby).toBe(r0.standby);

    // A list's ETag tells no version: a conditional list read goes to the primary, which has the
    // new price (not the standby's list, which still matches the old ETag).
    const beforeList = await t.http().get('/api/v1/products?limit=100').expect(200);
    expect(beforeList.body.items.find((p: any) => p.id === id)?.priceCents).toBe(1000);
    const conditional = await t
      .http()
      .get('/api/v1/products?limit=100')
      .set('If-None-Match', beforeList.headers.etag)
      .expect(200);
    expect(conditional.body.items.find((p: any) => p.id === id)?.priceCents).toBe(2000);
    expect(conditional.headers.etag).not.toBe(list0.headers.etag);
  });

  it('shows an overdue pending order read from a standby as expired, computed, and writes nothing there', async () => {
    const product = await createProduct(t, admin, { stock: 5 });
    const customer = await account(t);
    const placed = await t
      .http()
      .post('/api/v1/orders')
      .set(customer.auth)
      .send({ items: [{ productId: product.id, quantity: 1 }] })
      .expect(201);
    await sleep(2100); // the hold (2 s) is over; the sweeper is off
    await caughtUp();
    await sleep(600);
    const r0 = await reads();
    const shown = await t
      .http()
      .get(`/api/v1/orders/${placed.body.id}`)
      .set(customer.auth)
      .expect(200);
    expect((await reads()).standby).toBe(r0.standby + 1);
    expect(shown.body.status).toBe('expired');
    expect(shown.body.expiresAt).toBeNull();
    expect(shown.body.version).toBe(placed.body.version + 1);
    const [row] = await t.db.query('SELECT status FROM orders WHERE id = $1', [placed.body.id]);
    expect(row.status).toBe('pending');
    // The primary expires it when it reads it (here: the history, which needs the expire entry).
    const history = await t
      .http()
      .get(`/api/v1/orders/${placed.body.id}/history`)
      .set(customer.auth)
      .expect(200);
    expect(history.body.items.map((e: any) => e.action)).toEqual(['place', 'expire']);
    const [after] = await t.db.query('SELECT status, version FROM orders WHERE id = $1', [
      placed.body.id,
    ]);
    expect(after).toEqual({ status: 'expired', version: placed.body.version + 1 });
  });

  it('the standby stopped mid-run: reads continue on the primary with no 5xx; restarted: used again', async () => {
    const { id } = await changedProduct();
    let stop = false;
    const statuses = new Map<number, number>();
    const readers = Array.from({ length: 4 }, async () => {
      while (!stop) {
        const res = await t.http().get(`/api/v1/products/${id}`);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      }
    });
    await sleep(300);
    await pair.stopStandby();
    await sleep(1000);
    const whileDown = await reads();
    await sleep(500);
    const stillDown = await reads();
    expect(stillDown.standby).toBe(whileDown.standby);
    expect(stillDown.primary).toBeGreaterThan(whileDown.primary);
    await pair.startStandby();
    let back = false;
    for (let i = 0; i < 200 && !back; i++) {
      await sleep(100);
      back = (await reads()).standby > stillDown.standby;
    }
    stop = true;
    await Promise.all(readers);
    process.stdout.write(
      `standby stopped and restarted mid-run: statuses ${JSON.stringify(Object.fromEntries(statuses))}\n`,
    );
    expect(back).toBe(true);
    expect([...statuses.keys()]).toEqual([200]);
  }, 60_000);

  it('1,000 write-then-read pairs from 20 typed clients: 0 reads older than the client’s own write', async () => {
    const clients = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const a = await account(t, 'admin');
        const client = new OrderClient({ baseUrl: t.baseUrl });
        await client.login(a.email, a.password);
        const product = await createProduct(t, admin, { priceCents: 100 });
        return { client, id: product.id };
      }),
    );
    await caughtUp();
    await sleep(600);
    const r0 = await reads();
    let stale = 0;
    let pairs = 0;
    const started = Date.now();
    await Promise.all(
      clients.map(async ({ client, id }) => {
        for (let i = 0; i < 50; i++) {
          const written = await client.update('products', id, (p) => ({
            priceCents: p.priceCents + 1,
          }));
          const read = await client.getProduct(id);
          pairs++;
          if (read.value.version < written.version || read.value.priceCents !== written.priceCents)
            stale++;
          // Now and then, a pause long enough for the standby to replay the write.
          if (i % 10 === 9) await sleep(APPLY_DELAY_MS + 600);
        }
      }),
    );
    const r1 = await reads();
    const served = { primary: r1.primary - r0.primary, standby: r1.standby - r0.standby };
    process.stdout.write(
      `write-then-read: ${pairs} pairs from 20 clients in ${Date.now() - started} ms, ${stale} reads older than the client's own write; reads served: ${JSON.stringify(served)}\n`,
    );
    expect(pairs).toBe(1000);
    expect(stale).toBe(0);
    // The standby did serve reads that had the client's token (after the pauses).
    expect(served.standby).toBeGreaterThan(0);
  }, 120_000);
});

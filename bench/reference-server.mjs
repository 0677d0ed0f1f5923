// The reference points for the service's hot paths: plain Fastify + pg, no framework, no hooks.
//
// - `GET /api/v1/products/:id` (scenario a-ref) runs the exact SQL TypeORM generates for
//   `getRepository(Product).findOneBy({ id })` and answers the same representation as the service
//   (ProductDto, same member order) with the same validators (ETag, Last-Modified).
// - `POST /api/v1/orders` (scenario d-ref) places an order the way a hand-written server would, with
//   the same effects in the database as the service's placement: BEGIN; per line, in product-id
//   order, a conditional decrement; INSERT the order, its lines, its history entry and its outbox
//   event; COMMIT. For a one-line order that is seven statements, each its own round trip (pg sends
//   a query only once the previous one has answered). It answers the same OrderDto the service
//   does. It does not verify the bearer token (any `Bearer <token>` is accepted) and takes the
//   customer from CUSTOMER_ID; it has no idempotency keys, no active-product check, no expiry of
//   overdue holds, no webhook deliveries (the bench has no subscriptions) and no metrics.
//
// The difference in throughput is what the service's stack (and its extra checks) costs.
//
// Environment: DATABASE_URL, PORT, POOL_SIZE (default 20), CUSTOMER_ID (the user every order is
// placed for; without it POST answers 503). Started by run.mjs with fork(): it sends `ready` over IPC
// once listening, and closes its pool on SIGTERM/SIGINT.
import { createHash, randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import pg from 'pg';

/**
 * What TypeORM 1.1 sends for findOneBy({ id }) on Product (README.md shows how to print it), without
 * `stock`: since issue 25 the product's representation does not carry it (API.md §13).
 */
const FIND_ONE_BY_ID =
  'SELECT "Product"."id" AS "Product_id", "Product"."version" AS "Product_version", ' +
  '"Product"."created_at" AS "Product_created_at", "Product"."updated_at" AS "Product_updated_at", ' +
  '"Product"."sku" AS "Product_sku", "Product"."slug" AS "Product_slug", ' +
  '"Product"."name" AS "Product_name", "Product"."description" AS "Product_description", ' +
  '"Product"."price_cents" AS "Product_price_cents", "Product"."currency" AS "Product_currency", ' +
  '"Product"."active" AS "Product_active" ' +
  'FROM "products" "Product" WHERE (("Product"."id" = $1)) LIMIT 1';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Same digest as the service's computeEtag(kind, id, version, variant). */
function etag(id, version, kind = 'product', variant = '') {
  const digest = createHash('sha256')
    .update(`${kind}\0${id}\0${version}\0${variant}`)
    .digest('base64url');
  return `"v${version}-${digest.slice(0, 27)}"`;
}

const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.POOL_SIZE ?? 20),
});
const app = Fastify({ logger: false });

app.get('/api/v1/products/:id', async (request, reply) => {
  const { id } = request.params;
  if (!UUID.test(id)) return reply.code(400).send({ code: 'VALIDATION_FAILED' });
  const { rows } = await pool.query(FIND_ONE_BY_ID, [id.toLowerCase()]);
  if (rows.length === 0) return reply.code(404).send({ code: 'NOT_FOUND' });
  const r = rows[0];
  void reply
    .header('ETag', etag(r.Product_id, r.Product_version, 'product', 'without-stock'))
    .header('Last-Modified', r.Product_updated_at.toUTCString());
  return {
    id: r.Product_id,
    sku: r.Product_sku,
    slug: r.Product_slug,
    name: r.Product_name,
    description: r.Product_description,
    priceCents: r.Product_price_cents,
    currency: r.Product_currency,
    active: r.Product_active,
    version: r.Product_version,
    createdAt: r.Product_created_at.toISOString(),
    updatedAt: r.Product_updated_at.toISOString(),
  };
});

// ---------------------------------------------------------------------------------------------
// POST /api/v1/orders

const CUSTOMER_ID = process.env.CUSTOMER_ID;
const HOLD = "interval '30 minutes'";
/** The service's limits (CreateOrderDto): MAX_LINES, MAX_QUANTITY. */
const MAX_LINES = 100;
const MAX_QUANTITY = 1000;

const TAKE =
  'UPDATE products SET stock = stock - $2 WHERE id = $1 AND stock >= $2 ' +
  'RETURNING sku, name, price_cents, currency';
const INSERT_ORDER =
  "INSERT INTO orders (user_id, status, total_cents, currency, expires_at) VALUES ($1, 'pending', " +
  `$2, $3, clock_timestamp() + ${HOLD}) ` +
  'RETURNING id, status, total_cents, currency, version, created_at, updated_at, expires_at';
const INSERT_HISTORY =
  'INSERT INTO order_history (order_id, from_status, to_status, actor_id, action) ' +
  "VALUES ($1, NULL, 'pending', $2, 'place')";
const INSERT_EVENT =
  'INSERT INTO outbox_events (id, type, order_id, order_version, body, occurred_at) ' +
  "VALUES ($1, 'order.created', $2, $3, $4, $5)";

/** `INSERT INTO order_items` for `n` lines: one statement, one VALUES row per line. */
function insertItems(n) {
  const rows = Array.from({ length: n }, (_, i) => {
    const p = 2 + i * 6;
    return `($1, $${p}, $${p + 1}, $${p + 2}, $${p + 3}, $${p + 4}, $${p + 5})`;
  });
  return (
    'INSERT INTO order_items (order_id, line_no, product_id, sku, name, unit_price_cents, quantity) ' +
    `VALUES ${rows.join(', ')}`
  );
}

const problem = (reply, status, code, detail, extras = {}) =>
  reply
    .code(status)
    .type('application/problem+json')
    .send({ type: `about:blank#${code}`, title: code, status, detail, code, ...extras });

/** The order's lines merged per product, in product-id order; a string when the body is invalid. */
function linesOf(body) {
  const items = body?.items;
  if (!Array.isArray(items) || items.length < 1 || items.length > MAX_LINES) {
    return `items must be an array of 1 to ${MAX_LINES} lines`;
  }
  const units = new Map();
  for (const line of items) {
    const { productId, quantity } = line ?? {};
    if (typeof productId !== 'string' || !UUID.test(productId)) return 'productId must be a UUID';
    if (!Number.isInteger(quantity) || quantity < 1 || quantity > MAX_QUANTITY) {
      return `quantity must be an integer from 1 to ${MAX_QUANTITY}`;
    }
    const id = productId.toLowerCase();
    units.set(id, (units.get(id) ?? 0) + quantity);
  }
  return [...units].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

app.post('/api/v1/orders', async (request, reply) => {
  const auth = request.headers.authorization;
  if (typeof auth !== 'string' || !/^Bearer \S+$/.test(auth)) {
    return problem(reply, 401, 'UNAUTHENTICATED', 'A bearer token is required.');
  }
  if (!CUSTOMER_ID) return problem(reply, 503, 'SERVICE_UNAVAILABLE', 'CUSTOMER_ID is not set.');
  const lines = linesOf(request.body);
  if (typeof lines === 'string') return problem(reply, 400, 'VALIDATION_FAILED', lines);

  const client = await pool.connect();
  let done = false;
  try {
    await client.query('BEGIN');
    const taken = [];
    const short = [];
    for (const [id, quantity] of lines) {
      const { rows } = await client.query(TAKE, [id, quantity]);
      if (rows.length) taken.push({ id, quantity, ...rows[0] });
      else short.push({ id, quantity });
    }
    if (short.length) {
      // Only on refusal: what is available, for the problem (and whether the product exists).
      const { rows } = await client.query(
        'SELECT id, sku, stock FROM products WHERE id = ANY($1::uuid[])',
        [short.map((s) => s.id)],
      );
      await client.query('ROLLBACK');
      done = true;
      const found = new Map(rows.map((r) => [r.id, r]));
      const unknown = short.filter((s) => !found.has(s.id));
      if (unknown.length) {
        return problem(reply, 404, 'UNKNOWN_PRODUCT', 'Unknown products.', {
          productIds: unknown.map((s) => s.id),
        });
      }
      const items = short.map((s) => ({
        productId: s.id,
        sku: found.get(s.id).sku,
        requested: s.quantity,
        available: Number(found.get(s.id).stock),
      }));
      return problem(
        reply,
        409,
        'INSUFFICIENT_STOCK',
        `Not enough stock for ${items.map((i) => `${i.sku} (${i.requested} requested, ${i.available} available)`).join(', ')}. Nothing was reserved.`,
        { items },
      );
    }

    const total = taken.reduce((sum, t) => sum + t.price_cents * t.quantity, 0);
    const {
      rows: [o],
    } = await client.query(INSERT_ORDER, [CUSTOMER_ID, total, taken[0].currency]);
    await client.query(
      insertItems(taken.length),
      [o.id].concat(
        ...taken.map((t, i) => [i + 1, t.id, t.sku, t.name, t.price_cents, t.quantity]),
      ),
    );
    await client.query(INSERT_HISTORY, [o.id, CUSTOMER_ID]);
    const order = {
      id: o.id,
      userId: CUSTOMER_ID,
      status: o.status,
      // The owner's actions on a pending order: `pay` is the service's own since payments (API.md §9).
      allowedTransitions: ['cancel'],
      items: taken.map((t) => ({
        productId: t.id,
        sku: t.sku,
        name: t.name,
        unitPriceCents: t.price_cents,
        quantity: t.quantity,
      })),
      subtotalCents: Number(o.total_cents),
      discountCents: 0,
      promotionCode: null,
      totalCents: Number(o.total_cents),
      currency: o.currency,
      paymentStatus: 'unpaid',
      paidCents: 0,
      refundedCents: 0,
      expiresAt: o.expires_at.toISOString(),
      version: o.version,
      createdAt: o.created_at.toISOString(),
      updatedAt: o.updated_at.toISOString(),
    };
    const occurredAt = new Date();
    const event = {
      id: randomUUID(),
      type: 'order.created',
      occurredAt: occurredAt.toISOString(),
      data: { order },
    };
    await client.query(INSERT_EVENT, [
      event.id,
      o.id,
      o.version,
      JSON.stringify(event),
      occurredAt,
    ]);
    await client.query('COMMIT');
    done = true;
    void reply
      .code(201)
      .header('Location', `/api/v1/orders/${o.id}`)
      .header('ETag', etag(o.id, o.version, 'order', 'owner'))
      .header('Last-Modified', o.updated_at.toUTCString());
    return order;
  } finally {
    // After a failed statement: roll back, and drop the connection if even that fails.
    const broken = done
      ? undefined
      : await client.query('ROLLBACK').then(
          () => undefined,
          (e) => e,
        );
    client.release(broken);
  }
});

const close = () => {
  app
    .close()
    .then(() => pool.end())
    .then(
      () => process.exit(0),
      () => process.exit(1),
    );
};
process.once('SIGTERM', close);
process.once('SIGINT', close);

await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
process.send?.({ type: 'ready' });

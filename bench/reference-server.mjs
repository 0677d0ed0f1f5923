// The reference point for "GET one product": plain Fastify + pg, no framework, no hooks. It runs the
// exact SQL TypeORM generates for `getRepository(Product).findOneBy({ id })` and answers the same
// representation as the service (ProductDto, same member order) with the same validators (ETag,
// Last-Modified), so the difference in throughput is what the service's stack costs.
//
// Environment: DATABASE_URL, PORT, POOL_SIZE (default 20). Started by run.mjs with fork(): it sends
// `ready` over IPC once listening, and closes its pool on SIGTERM/SIGINT.
import { createHash } from 'node:crypto';
import Fastify from 'fastify';
import pg from 'pg';

/** What TypeORM 1.1 sends for findOneBy({ id }) on Product (README.md shows how to print it). */
const FIND_ONE_BY_ID =
  'SELECT "Product"."id" AS "Product_id", "Product"."version" AS "Product_version", ' +
  '"Product"."created_at" AS "Product_created_at", "Product"."updated_at" AS "Product_updated_at", ' +
  '"Product"."sku" AS "Product_sku", "Product"."slug" AS "Product_slug", ' +
  '"Product"."name" AS "Product_name", "Product"."description" AS "Product_description", ' +
  '"Product"."price_cents" AS "Product_price_cents", "Product"."currency" AS "Product_currency", ' +
  '"Product"."stock" AS "Product_stock", "Product"."active" AS "Product_active" ' +
  'FROM "products" "Product" WHERE (("Product"."id" = $1)) LIMIT 1';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Same digest as the service's computeEtag('product', id, version). */
function etag(id, version) {
  const digest = createHash('sha256').update(`product\0${id}\0${version}\0`).digest('base64url');
  return `"${digest.slice(0, 27)}"`;
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
    .header('ETag', etag(r.Product_id, r.Product_version))
    .header('Last-Modified', r.Product_updated_at.toUTCString());
  return {
    id: r.Product_id,
    sku: r.Product_sku,
    slug: r.Product_slug,
    name: r.Product_name,
    description: r.Product_description,
    priceCents: r.Product_price_cents,
    currency: r.Product_currency,
    // bigint: pg answers a string; the service parses it (far below 2^53), and so does this.
    stock: Number(r.Product_stock),
    active: r.Product_active,
    version: r.Product_version,
    createdAt: r.Product_created_at.toISOString(),
    updatedAt: r.Product_updated_at.toISOString(),
  };
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

// The database's own ceiling for placing orders, for context: pgbench (the PostgreSQL client
// package's, not shipped with the embedded server) runs a whole one-line order as ONE SQL statement,
// so that the figure is what PostgreSQL can commit on this machine with no application round trips
// at all. Used by run.mjs; see bench/README.md.
import { execFile as execFileCb } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFile = promisify(execFileCb);

export const PGBENCH = process.env.PGBENCH ?? 'pgbench';

/** pgbench's version line (`pgbench (PostgreSQL) 15.10`), or undefined when it is not installed. */
export async function pgbenchVersion() {
  try {
    return (await execFile(PGBENCH, ['--version'])).stdout.trim();
  } catch {
    return undefined;
  }
}

/**
 * A whole one-line order (quantity 1) in one statement: the conditional decrement, the order, its
 * line, its 'place' history entry and its order.created outbox event with the order as JSON, as the
 * service writes them. `product` is an SQL expression for the product's id. When the product is
 * short, the UPDATE matches nothing and so does everything after it: the transaction commits
 * without an order (the harness compares orders created with transactions).
 */
function orderStatement(product, customerId) {
  return `WITH p AS (
  UPDATE products SET stock = stock - 1 WHERE id = ${product} AND stock >= 1
  RETURNING id, sku, name, price_cents, currency
), o AS (
  INSERT INTO orders (user_id, status, total_cents, currency, expires_at)
  SELECT '${customerId}', 'pending', price_cents, currency, clock_timestamp() + interval '30 minutes' FROM p
  RETURNING id, user_id, status, total_cents, currency, version, created_at, updated_at, expires_at
), i AS (
  INSERT INTO order_items (order_id, line_no, product_id, sku, name, unit_price_cents, quantity)
  SELECT o.id, 1, p.id, p.sku, p.name, p.price_cents, 1 FROM o CROSS JOIN p
  RETURNING product_id, sku, name, unit_price_cents, quantity
), h AS (
  INSERT INTO order_history (order_id, from_status, to_status, actor_id, action)
  SELECT id, NULL, 'pending', user_id, 'place' FROM o
), e AS (
  SELECT gen_random_uuid() AS id, clock_timestamp() AS at
)
INSERT INTO outbox_events (id, type, order_id, order_version, body, occurred_at)
SELECT e.id, 'order.created', o.id, o.version,
  json_build_object('id', e.id, 'type', 'order.created', 'occurredAt', e.at, 'data', json_build_object(
    'order', json_build_object('id', o.id, 'userId', o.user_id, 'status', o.status,
      'allowedTransitions', json_build_array('cancel'),
      'items', json_build_array(json_build_object('productId', i.product_id, 'sku', i.sku,
        'name', i.name, 'unitPriceCents', i.unit_price_cents, 'quantity', i.quantity)),
      'subtotalCents', o.total_cents, 'discountCents', 0, 'promotionCode', NULL,
      'totalCents', o.total_cents, 'currency', o.currency, 'paymentStatus', 'unpaid',
      'paidCents', 0, 'refundedCents', 0, 'expiresAt', o.expires_at,
      'version', o.version, 'createdAt', o.created_at, 'updatedAt', o.updated_at)))::text,
  e.at
FROM o CROSS JOIN i CROSS JOIN e;
`;
}

/** The two pgbench scripts: a random product of `productIds` per transaction, or always `hotId`. */
export function scripts({ productIds, hotId, customerId }) {
  const array = `(ARRAY[${productIds.map((id) => `'${id}'`).join(', ')}]::uuid[])`;
  return {
    spread: `\\set i random(1, ${productIds.length})\n${orderStatement(`${array}[:i]`, customerId)}`,
    hot: orderStatement(`'${hotId}'::uuid`, customerId),
  };
}

/** Parses pgbench's summary. */
function parse(stdout) {
  const num = (re) => {
    const m = re.exec(stdout);
    return m ? Number(m[1]) : undefined;
  };
  return {
    tps: num(/^tps = ([\d.]+) \(without initial connection time\)/m),
    latencyMs: num(/^latency average = ([\d.]+) ms/m),
    transactions: num(/^number of transactions actually processed: (\d+)/m),
    failed: num(/^number of failed transactions: (\d+)/m) ?? 0,
  };
}

/**
 * Runs `script` with pgbench against `url` (-M prepared: parsed once per connection, as the
 * ceiling should be) and returns tps, average latency, transactions and failed transactions.
 */
export async function pgbench(url, script, { clients, threads, duration }) {
  const dir = await mkdtemp(join(tmpdir(), 'bench-pgbench-'));
  try {
    const file = join(dir, 'order.sql');
    await writeFile(file, script);
    const args = [
      '-n', // no vacuum of pgbench's own tables (there are none)
      '-M',
      'prepared',
      '-c',
      String(clients),
      '-j',
      String(threads),
      '-T',
      String(duration),
      '-f',
      file,
      url,
    ];
    const { stdout } = await execFile(PGBENCH, args, { maxBuffer: 16 * 1024 * 1024 });
    const result = parse(stdout);
    if (result.tps === undefined) throw new Error(`pgbench: no tps in its output:\n${stdout}`);
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

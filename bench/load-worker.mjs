// One autocannon run in its own process (forked by run.mjs), so that the load generator never shares
// an event loop with the harness or with a server under test. It receives one spec over IPC, sends a
// `tick` message every second and one `result` message at the end, then exits.
import { createHmac, randomUUID } from 'node:crypto';
import autocannon from 'autocannon';

/**
 * autocannon's own `duration` stops by destroying its sockets, so the requests in flight at that
 * moment are never counted although the server still completes them (an order would then exist
 * without its 201). We stop gracefully instead (see `drain`), and keep autocannon's timer only as a
 * backstop this many seconds later, for a connection whose answer never comes.
 */
const BACKSTOP_S = 15;
const REQUEST_TIMEOUT_S = 10;
/** Characters kept of the first body seen for each status code, for the invariant checks. */
const SAMPLE_CHARS = 600;

/** Nearest-rank percentile of ascending `sorted`. */
const percentile = (sorted, p) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];

/**
 * One request of a connection's cycle, for autocannon. `bodies` and `paths` rotate with a counter
 * per request shared by all connections, so consecutive requests rotate over them whatever
 * connection sends them.
 */
function autocannonRequest(
  {
    method,
    path,
    headers = {},
    body,
    bodies,
    paths,
    authorizations,
    idempotencyKeys,
    stripeSecret,
  },
  samples,
) {
  let next = 0;
  /**
   * Per request: a new Idempotency-Key (as the typed client sends one per checkout), and a
   * Stripe-Signature made at send time (`t=<now>,v1=<HMAC-SHA256 of "t.body">`, Stripe's scheme, so
   * that the service's 5-minute tolerance holds however long ago the events were prepared).
   */
  const perRequest = (req, requestBody, i) => {
    if (!idempotencyKeys && !stripeSecret && !authorizations) return req;
    const extra = {};
    if (authorizations) extra.authorization = authorizations[i % authorizations.length];
    if (idempotencyKeys) extra['idempotency-key'] = randomUUID();
    if (stripeSecret) {
      const t = Math.floor(Date.now() / 1000);
      const v1 = createHmac('sha256', stripeSecret).update(`${t}.${requestBody}`).digest('hex');
      extra['stripe-signature'] = `t=${t},v1=${v1}`;
    }
    return { ...req, headers: { ...req.headers, ...extra } };
  };
  return {
    method,
    path,
    headers,
    body,
    // Called for every request this entry sends (autocannon rebuilds requests that have it).
    ...((bodies || paths || authorizations || idempotencyKeys || stripeSecret) && {
      setupRequest: (req) => {
        const i = next++;
        const chosen = bodies ? bodies[i % bodies.length] : (req.body ?? body);
        return perRequest(
          {
            ...req,
            ...(bodies && { body: chosen }),
            ...(paths && { path: paths[i % paths.length] }),
          },
          chosen,
          i,
        );
      },
    }),
    onResponse: (status, responseBody) => {
      samples[status] ??= String(responseBody).slice(0, SAMPLE_CHARS);
    },
  };
}

/**
 * @param {object} spec
 * @param {string} spec.url      base URL, e.g. http://127.0.0.1:3000
 * @param {string} spec.method
 * @param {string} spec.path
 * @param {Record<string, string>} [spec.headers]
 * @param {string} [spec.body]   one body for every request
 * @param {string[]} [spec.bodies] bodies used in turn, one per request (e.g. rotating product ids)
 * @param {string[]} [spec.paths]  paths used in turn, one per request
 * @param {string[]} [spec.authorizations] Authorization headers used in turn, one per request (many
 *   customers, as a storefront has)
 * @param {boolean} [spec.idempotencyKeys] a new Idempotency-Key (UUID) on every request
 * @param {string} [spec.stripeSecret] sign every body as Stripe signs its events, with this secret
 * @param {object[]} [spec.requests] instead of the above, a cycle of requests (each with method,
 *   path, headers, body, bodies, paths) that every connection sends in turn: a mixed load
 * @param {number} spec.connections
 * @param {number} spec.duration seconds
 * @param {number} [spec.amount] instead of a duration: exactly this many requests (then `duration`
 *   only bounds the run), e.g. to prepare data through the API
 */
function runLoad(spec) {
  const { url, connections, amount } = spec;
  // With an amount, the run ends when every request is answered; the ticks only report progress.
  const duration = amount ? Infinity : spec.duration;
  const samples = {};
  const requests = (spec.requests ?? [spec]).map((r) => autocannonRequest(r, samples));

  return new Promise((resolve, reject) => {
    const started = performance.now();
    let lastResponse = started;
    let draining = false;
    const clients = new Set();
    const latencies = [];
    // Internal fields of autocannon's httpClient (v8/v9): a client checks `reqsMade >= responseMax`
    // after each response and, once reached, closes and reports itself done. Setting the limit to the
    // requests already sent lets every connection receive its last answer, then stop.
    const drain = (client) => {
      client.responseMax = client.reqsMade;
    };

    const instance = autocannon(
      {
        url,
        connections,
        ...(amount ? { amount } : { duration: duration + BACKSTOP_S }),
        timeout: REQUEST_TIMEOUT_S,
        requests,
      },
      (err, result) => {
        if (err) return reject(err);
        const statusCodes = Object.fromEntries(
          Object.entries(result.statusCodeStats).map(([code, { count }]) => [code, count]),
        );
        const responses = latencies.length;
        const elapsedS = (lastResponse - started) / 1000;
        latencies.sort((a, b) => a - b);
        resolve({
          elapsedS,
          responses,
          rps: elapsedS > 0 ? responses / elapsedS : 0,
          // autocannon's own histogram has 1 ms resolution; these are exact.
          latency: {
            p50: percentile(latencies, 50),
            p90: percentile(latencies, 90),
            p99: percentile(latencies, 99),
            max: latencies.at(-1),
          },
          statusCodes,
          errors: result.errors,
          timeouts: result.timeouts,
          // Sent but never answered: only when the backstop had to cut a connection.
          unanswered: result.requests.sent - responses,
          samples,
        });
      },
    );

    let answered = 0;
    instance.on('response', (client, _status, _bytes, ms) => {
      answered += 1;
      latencies.push(ms);
      lastResponse = performance.now();
      clients.add(client);
      if (draining) drain(client);
    });
    // Progress for the harness: responses in each second of the measured duration.
    let second = 0;
    const progress = setInterval(() => {
      if (amount && second >= spec.duration + BACKSTOP_S) instance.stop();
      second += 1;
      process.send({ type: 'tick', second, counter: answered });
      answered = 0;
      if (second === duration) {
        clearInterval(progress);
        draining = true;
        clients.forEach(drain);
      }
    }, 1000);
  });
}

process.once('message', (spec) => {
  runLoad(spec).then(
    (result) => process.send({ type: 'result', result }, () => process.exit(0)),
    (err) =>
      process.send({ type: 'error', message: err?.stack ?? String(err) }, () => process.exit(1)),
  );
});

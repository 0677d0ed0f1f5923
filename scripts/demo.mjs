// `npm run demo`: starts the built service on a fresh embedded PostgreSQL (its development seed
// gives the demo its admin) and runs the narrated storefront session against it (client/demo).
// With `-- --url URL`, runs the session against a service that is already running instead.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, ROOT, startBuiltService } from './service-process.mjs';

const args = process.argv.slice(2);
const given = args.includes('--url') ? args[args.indexOf('--url') + 1] : undefined;

let service;
let dir;
async function cleanUp() {
  await service?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}
// Interrupted (Ctrl-C): stop the service we started (it stops its PostgreSQL), then go.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => void cleanUp().finally(() => process.exit(130)));
}

let url = given;
if (!url) {
  dir = mkdtempSync(join(tmpdir(), 'order-service-demo-'));
  chmodSync(dir, 0o755); // the embedded server runs as `postgres` when we are root
  service = await startBuiltService({
    name: 'demo service',
    inheritEnv: true,
    env: {
      NODE_ENV: 'development',
      DATABASE_URL: '',
      EMBEDDED_PG_DIR: join(dir, 'pgdata'),
      EMBEDDED_PG_PORT: String(await freePort()),
      LOG_LEVEL: 'warn',
      // Steps 7 and 9 watch a hold end (units back on sale; money after it revives the order): a 3 s hold, swept
      // every second, lets it happen within the session (the defaults are 1800 s and 5 s).
      ORDER_HOLD_SECONDS: '3',
      ORDER_EXPIRY_SWEEP_SECONDS: '1',
    },
  });
  url = service.url;
}
const session = spawn(
  process.execPath,
  [join(ROOT, 'client/dist/demo/demo.js'), '--url', url, ...(given ? [] : ['--fresh'])],
  { stdio: 'inherit' },
);
const code = await new Promise((resolve) => session.once('exit', (c) => resolve(c ?? 1)));
await cleanUp();
process.exit(code);

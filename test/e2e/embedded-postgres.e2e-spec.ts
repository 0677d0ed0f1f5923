import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { startEmbeddedPostgres } from '../../src/database/embedded-postgres';
import { freePort } from '../../scripts/service-process.mjs';

describe('the embedded PostgreSQL', () => {
  it('never stops a server it found running (npm run admin:create next to npm start)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'order-service-embedded-'));
    await chmod(dir, 0o755);
    const dataDir = join(dir, 'pgdata');
    const port = await freePort();
    const owner = await startEmbeddedPostgres({ dataDir, port });
    try {
      const visitor = await startEmbeddedPostgres({ dataDir, port });
      expect(visitor.url).toBe(owner.url);
      await visitor.stop();
      const client = new Client({ connectionString: owner.url });
      await client.connect();
      const { rows } = await client.query<{ one: number }>('SELECT 1 AS one');
      expect(rows[0].one).toBe(1);
      await client.end();
    } finally {
      await owner.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

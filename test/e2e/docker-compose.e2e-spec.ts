import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * `docker compose up` runs NODE_ENV=production on a published port: it must not start with a secret
 * or demo passwords anyone can read in this repository. Checked with the real `docker-compose config`
 * (interpolation is compose's, not ours), which needs no Docker engine.
 */
const available = spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0;
if (!available) {
  // Straight to stderr: Jest drops console output of a file whose tests are all skipped.
  process.stderr.write('\ndocker-compose.yml checks skipped: docker-compose is not installed\n');
}

let emptyEnvFile = '';

function composeConfig(env: Record<string, string>): {
  status: number | null;
  stdout: string;
  stderr: string;
} {
  // Only what is passed here: neither the caller's environment nor a local .env may set JWT_SECRET.
  const r = spawnSync('docker-compose', ['--env-file', emptyEnvFile, 'config'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const secret = 'a-secret-only-this-deployment-knows-0123456789';

(available ? describe : describe.skip)('docker-compose.yml', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'order-service-compose-'));
    emptyEnvFile = join(dir, 'empty.env');
    writeFileSync(emptyEnvFile, '');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['unset', {}],
    ['empty', { JWT_SECRET: '' }],
  ])('refuses to start when JWT_SECRET is %s', (_, env) => {
    const r = composeConfig(env);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/JWT_SECRET/);
    expect(r.stdout).not.toMatch(/JWT_SECRET/);
  });

  it('uses the JWT_SECRET given, and seeds nothing unless asked', () => {
    const r = composeConfig({ JWT_SECRET: secret });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^\\s+JWT_SECRET: ['"]?${secret}['"]?$`, 'm'));
    expect(r.stdout).toMatch(/^\s+SEED_DEMO: ['"]?false['"]?$/m);
    expect(r.stdout).toMatch(/^\s+NODE_ENV: ['"]?production['"]?$/m);
  });

  it('seeds the demo when SEED_DEMO=true is asked for', () => {
    const r = composeConfig({ JWT_SECRET: secret, SEED_DEMO: 'true' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^\s+SEED_DEMO: ['"]?true['"]?$/m);
  });
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { envTable, envVariables } from '../../scripts/env-table.mjs';
import { loadEnv } from '../../src/config/env';

describe('the configuration table (generated from src/config/env.ts)', () => {
  it('is the table the README shows (npm run readme rewrites it)', () => {
    const readme = readFileSync(join(process.cwd(), 'README.md'), 'utf8');
    const section = /<!-- prettier-ignore-start -->\n([\s\S]*?)\n<!-- prettier-ignore-end -->/.exec(
      readme.slice(readme.indexOf('<!-- env:start -->')),
    );
    expect(readme).toContain('<!-- env:start -->');
    expect(section?.[1]).toBe(envTable());
  });

  it('has a row for every variable loadEnv validates, in the order of Env', () => {
    expect(envVariables().map((v) => v.name)).toEqual(Object.keys(loadEnv({})));
  });

  it('shows the defaults loadEnv applies', () => {
    const env = loadEnv({}) as unknown as Record<string, unknown>;
    for (const v of envVariables()) {
      const literal = /^`([^`]*)`$/.exec(v.default)?.[1];
      if (literal !== undefined) expect([v.name, String(env[v.name])]).toEqual([v.name, literal]);
      else if (v.default === 'unset') expect([v.name, env[v.name]]).toEqual([v.name, undefined]);
      else if (v.default === 'empty') expect([v.name, env[v.name]]).toEqual([v.name, []]);
    }
  });

  it('names the rate limits a storefront meets, with their defaults', () => {
    const rows = new Map(envVariables().map((v) => [v.name, v]));
    expect(rows.get('AUTH_RATE_LIMIT_MAX')?.default).toBe('`20`');
    expect(rows.get('RATE_LIMIT_WINDOW_SECONDS')?.default).toBe('`60`');
    expect(rows.get('DB_STATEMENT_TIMEOUT_MS')?.values).toBe('100–600,000');
  });
});

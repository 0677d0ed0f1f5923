import { EnvError, loadEnv } from '../../src/config/env';

describe('environment validation', () => {
  it('fills development defaults', () => {
    const env = loadEnv({});
    expect(env).toMatchObject({ NODE_ENV: 'development', PORT: 3000, DATABASE_URL: undefined });
    expect(env.JWT_SECRET.length).toBeGreaterThanOrEqual(32);
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ NODE_ENV: 'prod' }, 'NODE_ENV'],
    [{ NODE_ENV: 'production' }, 'JWT_SECRET'],
    [{ NODE_ENV: 'test' }, 'JWT_SECRET'],
    [{ RATE_LIMIT_MAX: '0' }, 'RATE_LIMIT_MAX'],
    [{ JWT_SECRET: 'short' }, 'JWT_SECRET'],
    [{ SEED_DEMO: 'maybe' }, 'SEED_DEMO'],
    [{ PLACEMENT_QUEUE_MAX: '0' }, 'PLACEMENT_QUEUE_MAX'],
    [{ PLACEMENT_QUEUE_WAIT_MS: 'soon' }, 'PLACEMENT_QUEUE_WAIT_MS'],
  ])('rejects %j naming %s', (src, variable) => {
    expect(() => loadEnv(src)).toThrow(EnvError);
    expect(() => loadEnv(src)).toThrow(new RegExp(`^Invalid environment variable ${variable}:`));
  });
});

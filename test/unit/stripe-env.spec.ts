import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Stripe from 'stripe';
import { EnvError, loadEnv } from '../../src/config/env';

const KEYS = { STRIPE_SECRET_KEY: 'sk_test_123', STRIPE_WEBHOOK_SECRET: 'whsec_abc' };
const PRODUCTION = { NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) };

describe('Stripe configuration (API.md §9)', () => {
  it('is off without keys, on with both', () => {
    expect(loadEnv({})).toMatchObject({
      STRIPE_SECRET_KEY: undefined,
      STRIPE_WEBHOOK_SECRET: undefined,
      STRIPE_API_BASE: undefined,
    });
    expect(loadEnv({ ...KEYS, STRIPE_API_BASE: 'http://127.0.0.1:12111' })).toMatchObject({
      ...KEYS,
      STRIPE_API_BASE: 'http://127.0.0.1:12111',
    });
    expect(loadEnv({ ...PRODUCTION, ...KEYS, STRIPE_SECRET_KEY: 'rk_live_9' })).toMatchObject({
      STRIPE_SECRET_KEY: 'rk_live_9',
    });
  });

  it.each([
    [{ STRIPE_SECRET_KEY: 'sk_test_123' }, 'STRIPE_WEBHOOK_SECRET', /both/],
    [{ STRIPE_WEBHOOK_SECRET: 'whsec_abc' }, 'STRIPE_SECRET_KEY', /both/],
    [{ ...KEYS, STRIPE_SECRET_KEY: 'whsec_abc' }, 'STRIPE_SECRET_KEY', /sk_ or rk_/],
    [{ ...KEYS, STRIPE_WEBHOOK_SECRET: 'sk_test_123' }, 'STRIPE_WEBHOOK_SECRET', /whsec_/],
    [{ ...KEYS, STRIPE_SECRET_KEY: 'pk_test_1' }, 'STRIPE_SECRET_KEY', /sk_ or rk_/],
    [{ ...KEYS, STRIPE_API_BASE: 'ftp://127.0.0.1' }, 'STRIPE_API_BASE', /http/],
    [{ ...KEYS, STRIPE_API_BASE: 'http://127.0.0.1:1/v1' }, 'STRIPE_API_BASE', /only protocol/],
    [
      { ...PRODUCTION, ...KEYS, STRIPE_API_BASE: 'http://127.0.0.1:12111' },
      'STRIPE_API_BASE',
      /tests and development only/,
    ],
  ])('refuses %j naming %s', (src, variable, why) => {
    expect(() => loadEnv(src)).toThrow(EnvError);
    expect(() => loadEnv(src)).toThrow(new RegExp(`^Invalid environment variable ${variable}:`));
    expect(() => loadEnv(src)).toThrow(why);
  });

  it('the README names the webhook API version and SDK the service runs (they move together)', () => {
    const readme = readFileSync(join(process.cwd(), 'README.md'), 'utf8');
    const sdk = (
      JSON.parse(readFileSync(join(process.cwd(), 'node_modules/stripe/package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
    expect(readme).toContain(`\`stripe\` ${sdk}: \`${Stripe.API_VERSION}\``);
  });
});

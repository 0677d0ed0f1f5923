import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { Env } from '../../config/env';
import { ManualProvider } from './manual.provider';
import {
  type NotifyingProvider,
  PAYMENT_PROVIDERS,
  type PaymentProvider,
  type ProviderName,
} from './payment-provider';
import { StripeProvider } from './stripe.provider';
import { TestProvider } from './test.provider';

/**
 * The provider registry: one line per provider, building it from the environment, or undefined
 * where it is not enabled (API.md §9: `test` only under development or test; `stripe` only with its
 * keys). A provider not enabled here is 400 on `POST /orders/{id}/payments` and its routes are 404.
 */
export const PROVIDER_FACTORIES: Record<ProviderName, (env: Env) => PaymentProvider | undefined> = {
  stripe: (env) => StripeProvider.fromEnv(env) ?? undefined,
  test: (env) => (env.NODE_ENV === 'production' ? undefined : new TestProvider()),
  manual: () => new ManualProvider(),
};

/** The enabled providers of this instance, by name. */
@Injectable()
export class PaymentProviders {
  private readonly enabled = new Map<ProviderName, PaymentProvider>();

  constructor(config: ConfigService<Env, true>) {
    const env = new Proxy({} as Env, {
      get: (_, key: string): unknown => config.get(key as keyof Env, { infer: true }),
    });
    for (const name of PAYMENT_PROVIDERS) {
      const provider = PROVIDER_FACTORIES[name](env);
      if (provider) this.enabled.set(name, provider);
    }
  }

  names(): ProviderName[] {
    return [...this.enabled.keys()];
  }

  get(name: ProviderName): PaymentProvider | undefined {
    return this.enabled.get(name);
  }

  /** A provider that notifies over HTTP (its `verify`), if enabled. */
  notifying(name: ProviderName): NotifyingProvider | undefined {
    const p = this.enabled.get(name);
    return p && 'verify' in p ? (p as NotifyingProvider) : undefined;
  }

  /** The test provider, where enabled (its complete route, and tests' fault injection). */
  test(): TestProvider | undefined {
    const p = this.enabled.get('test');
    return p instanceof TestProvider ? p : undefined;
  }
}

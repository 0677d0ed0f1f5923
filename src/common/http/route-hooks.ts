import type { RouteOptions } from 'fastify';

type RouteHookName = 'onRequest' | 'preValidation' | 'onSend';

/**
 * Adds a hook to one route's own hooks, from an `onRoute` hook as the route is registered: for work
 * that only some routes need, so that the requests of every other route (the product read, above
 * all) do not run it to find out that it does not apply. A route's own hooks run after the global
 * hooks of the same phase.
 */
export function appendRouteHook(route: RouteOptions, name: RouteHookName, hook: unknown): void {
  const hooks = route as unknown as Record<RouteHookName, unknown>;
  const own = hooks[name];
  hooks[name] =
    own === undefined ? [hook] : [...(Array.isArray(own) ? (own as unknown[]) : [own]), hook];
}

/** The route's methods, upper-case. */
export function routeMethods(route: RouteOptions): string[] {
  return (Array.isArray(route.method) ? route.method : [route.method]).map((m) => m.toUpperCase());
}

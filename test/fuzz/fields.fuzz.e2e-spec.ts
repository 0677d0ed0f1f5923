import type { BadKind } from './arbitraries';
import { BODY_ENDPOINTS, type BodyEndpointName, bodyEndpoints } from './endpoints';
import {
  type BodyEndpoint,
  type CaseOutcome,
  describeOutcome,
  type FieldCase,
  fieldCases,
  runFieldCase,
} from './fields';
import { describeExchange, type Snapshot, snapshot } from './harness';
import { createWorld, type FuzzWorld } from './world';

/**
 * The deterministic half of the body fuzzing (the random half is api.fuzz.e2e-spec.ts): every
 * field of every JSON body, nested ones included, gets every value of its bad-value catalogue
 * (arbitraries.ts `badValues`) on an otherwise valid request by an allowed caller, one field at a
 * time (fields.ts). Per endpoint, one test per kind of bad value; a failing test lists every
 * failing case as `endpoint · field ← kind: value [how it was sent] → status code: what is wrong`,
 * then the full exchange of the first few. The run ends with the list of every failing case.
 */
const GROUPS: { title: string; kinds: BadKind[] }[] = [
  { title: 'null in each field: 400 naming the field', kinds: ['null'] },
  {
    title: 'each other JSON type in each field: 400 naming the field',
    kinds: ['wrong type'],
  },
  {
    title:
      'edge, malformed and missing values: never a 5xx; 400 naming the field when out of range',
    kinds: ['edge', 'malformed', 'missing'],
  },
];
/** Full request and response shown for the first few failures of a test. */
const DETAILS = 3;

describe('one bad field at a time on an otherwise valid body: never a 5xx, a problem+json, nothing changed when refused', () => {
  let world: FuzzWorld;
  let table: Record<BodyEndpointName, BodyEndpoint>;
  /** The database as the last case left it: a refused case must leave it so. */
  let state: Snapshot;
  const counts = new Map<string, number>();
  const failed: string[] = [];

  beforeAll(async () => {
    world = await createWorld();
    table = bodyEndpoints(world);
    state = await snapshot(world.t);
  });
  afterAll(async () => {
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    const per = [...counts].map(([name, n]) => `${name}: ${n}`).join(', ');
    process.stdout.write(
      `\nOne-bad-field cases run: ${total} (${per}); failing: ${failed.length}\n${failed.map((f) => `  ✗ ${f}\n`).join('')}`,
    );
    await world?.close();
  });

  describe.each(BODY_ENDPOINTS)('%s', (name) => {
    it.each(GROUPS)('$title', async ({ kinds }) => {
      const cases = fieldCases(table[name]).filter((c) => kinds.includes(c.bad.kind));
      expect(cases.length).toBeGreaterThan(0);
      const failures: [FieldCase, CaseOutcome][] = [];
      for (const c of cases) {
        const outcome = await runFieldCase(world, c, state);
        state = outcome.after;
        if (outcome.problems.length) failures.push([c, outcome]);
        // FUZZ_STATS=1 shows every case's answer: a guide when extending the tables.
        if (process.env.FUZZ_STATS) process.stdout.write(`${describeOutcome(c, outcome)}\n`);
      }
      counts.set(name, (counts.get(name) ?? 0) + cases.length);
      if (!failures.length) return;
      failed.push(...failures.map(([c, o]) => describeOutcome(c, o)));
      throw new Error(
        [
          `${failures.length} of ${cases.length} cases failed:`,
          ...failures.map(([c, o]) => `  ✗ ${describeOutcome(c, o)}`),
          '',
          `The first ${Math.min(DETAILS, failures.length)} in full:`,
          ...failures
            .slice(0, DETAILS)
            .map(([, o]) => describeExchange(o.request, o.res, o.problems)),
        ].join('\n'),
      );
    });
  });
});

import { EnvError, loadEnv, tracesSampling } from '../../src/config/env';
import { DEFAULT_TRACE_RATIO, samplerFromEnv } from '../../src/observability/tracing';

const ratio = (r: number): string =>
  `ParentBased{root=TraceIdRatioBased{${r}}, remoteParentSampled=AlwaysOnSampler, ` +
  'remoteParentNotSampled=AlwaysOffSampler, localParentSampled=AlwaysOnSampler, ' +
  'localParentNotSampled=AlwaysOffSampler}';

describe('the tracing sampler (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG)', () => {
  it('is a parent-based ratio of 0.1 when neither variable is set, not the SDK default (every trace)', () => {
    expect(DEFAULT_TRACE_RATIO).toBe(0.1);
    expect(samplerFromEnv({}).toString()).toBe(`ProblemRecording{${ratio(0.1)}}`);
    expect(samplerFromEnv({ OTEL_TRACES_SAMPLER: '  ' }).toString()).toBe(
      `ProblemRecording{${ratio(0.1)}}`,
    );
  });

  it('takes the ratio from OTEL_TRACES_SAMPLER_ARG', () => {
    expect(samplerFromEnv({ OTEL_TRACES_SAMPLER_ARG: '0.25' }).toString()).toBe(
      `ProblemRecording{${ratio(0.25)}}`,
    );
    expect(
      samplerFromEnv({
        OTEL_TRACES_SAMPLER: 'traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '.5',
      }).toString(),
    ).toBe('ProblemRecording{TraceIdRatioBased{0.5}}');
  });

  it('keeps every trace under a ratio sampler named without its argument (the OpenTelemetry default)', () => {
    expect(samplerFromEnv({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio' }).toString()).toBe(
      `ProblemRecording{${ratio(1)}}`,
    );
  });

  it('builds each sampler the SDK knows by name', () => {
    const named = (name: string): string =>
      samplerFromEnv({ OTEL_TRACES_SAMPLER: name }).toString();
    expect(named('always_on')).toBe('ProblemRecording{AlwaysOnSampler}');
    expect(named('always_off')).toBe('ProblemRecording{AlwaysOffSampler}');
    expect(named('parentbased_always_on')).toMatch(
      /^ProblemRecording\{ParentBased\{root=AlwaysOnSampler,/,
    );
    expect(named('parentbased_always_off')).toMatch(
      /^ProblemRecording\{ParentBased\{root=AlwaysOffSampler,/,
    );
  });

  it.each([
    [
      { OTEL_TRACES_SAMPLER: 'jaeger_remote' },
      'OTEL_TRACES_SAMPLER',
      /expected one of parentbased_traceidratio/,
    ],
    [{ OTEL_TRACES_SAMPLER: 'AlwaysOn' }, 'OTEL_TRACES_SAMPLER', /got "AlwaysOn"/],
    [{ OTEL_TRACES_SAMPLER_ARG: '1.5' }, 'OTEL_TRACES_SAMPLER_ARG', /from 0 to 1, got "1.5"/],
    [{ OTEL_TRACES_SAMPLER_ARG: '-0.1' }, 'OTEL_TRACES_SAMPLER_ARG', /from 0 to 1/],
    [{ OTEL_TRACES_SAMPLER_ARG: '10%' }, 'OTEL_TRACES_SAMPLER_ARG', /from 0 to 1/],
    [{ OTEL_TRACES_SAMPLER_ARG: '1e-1' }, 'OTEL_TRACES_SAMPLER_ARG', /from 0 to 1/],
  ])(
    'refuses %j at boot, naming %s (the SDK would log it and sample everything)',
    (src, variable, message) => {
      for (const load of [
        () => loadEnv(src),
        () => tracesSampling(src),
        () => samplerFromEnv(src),
      ]) {
        let error: unknown;
        try {
          load();
        } catch (err) {
          error = err;
        }
        expect(error).toBeInstanceOf(EnvError);
        expect((error as EnvError).variable).toBe(variable);
        expect((error as EnvError).message).toMatch(message);
      }
    },
  );

  it('accepts the bounds and reads only its two variables in tracesSampling', () => {
    expect(tracesSampling({ OTEL_TRACES_SAMPLER_ARG: '0' }).OTEL_TRACES_SAMPLER_ARG).toBe(0);
    expect(tracesSampling({ OTEL_TRACES_SAMPLER_ARG: '1' }).OTEL_TRACES_SAMPLER_ARG).toBe(1);
    // NODE_ENV=production without JWT_SECRET fails loadEnv, not the sampler's own check.
    expect(tracesSampling({ NODE_ENV: 'production' })).toEqual({
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: undefined,
    });
    expect(loadEnv({}).OTEL_TRACES_SAMPLER).toBe('parentbased_traceidratio');
  });
});

// @ts-check
/** swc compiles TypeScript with legacy decorators and their metadata, as Nest needs. */
const transform = {
  '^.+\\.ts$': [
    '@swc/jest',
    {
      jsc: {
        parser: { syntax: 'typescript', decorators: true },
        transform: { legacyDecorator: true, decoratorMetadata: true },
        target: 'es2022',
        keepClassNames: true,
      },
      // Nest 12 is ESM-only and Jest can only load ESM in its native ESM mode (see package.json).
      module: { type: 'es6' },
      sourceMaps: 'inline',
    },
  ],
};

/**
 * Jest on Node 20 cannot `require()` an ES module, so the few ESM-only packages that CommonJS
 * dependencies require (@fastify/static → content-disposition) are compiled to CommonJS for Jest.
 * Node itself (npm start) loads them natively through require(esm).
 */
const requiredEsm = ['content-disposition'];
transform['^.+\\.js$'] = ['@swc/jest', { module: { type: 'commonjs' }, jsc: { target: 'es2022' } }];
const transformIgnorePatterns = [`/node_modules/(?!(${requiredEsm.join('|')})/)`];

/** @type {import('jest').Config} */
module.exports = {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      transformIgnorePatterns,
      extensionsToTreatAsEsm: ['.ts'],
      testMatch: [
        '<rootDir>/test/unit/**/*.spec.ts',
        '<rootDir>/src/**/*.spec.ts',
        '<rootDir>/client/test/**/*.spec.ts',
      ],
    },
    {
      displayName: 'e2e',
      testEnvironment: 'node',
      transform,
      transformIgnorePatterns,
      extensionsToTreatAsEsm: ['.ts'],
      testMatch: [
        '<rootDir>/test/e2e/**/*.e2e-spec.ts',
        '<rootDir>/test/concurrency/**/*.e2e-spec.ts',
        '<rootDir>/client/test/**/*.e2e-spec.ts',
        '<rootDir>/test/fuzz/**/*.e2e-spec.ts',
      ],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
      setupFilesAfterEnv: ['<rootDir>/test/support/jest.setup.ts'],
    },
  ],
  testTimeout: 60_000,
};

/** What the global setup hands to test files and the teardown, through the environment. */
export interface TestState {
  serverUrl: string;
  template: string;
  embeddedDataDir?: string;
}

const KEY = 'ORDER_SERVICE_TEST_STATE';

export function setTestState(state: TestState): void {
  process.env[KEY] = JSON.stringify(state);
}

export function getTestState(): TestState {
  const raw = process.env[KEY];
  if (!raw) throw new Error('The e2e global setup did not run');
  return JSON.parse(raw) as TestState;
}

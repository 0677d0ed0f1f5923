import type { ChildProcess } from 'node:child_process';

export declare const ROOT: string;
export declare function freePort(): Promise<number>;

export interface ServiceProcess {
  name: string;
  url: string;
  port: number;
  process: ChildProcess;
  /** What the process printed, for diagnosis (and for tests that read its log). */
  output: string[];
  exited: Promise<void>;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

export declare function startBuiltService(options?: {
  name?: string;
  env?: Record<string, string>;
  nodeFlags?: string[];
  inheritEnv?: boolean;
  detached?: boolean;
  timeoutMs?: number;
}): Promise<ServiceProcess>;

/**
 * Errors are values with a message for people. Every failure a user can cause
 * or fix is a LabError; the CLI's single handler (src/cli.ts) prints its
 * message on one line and exits with its code. Anything else is a bug and
 * keeps its stack.
 */
export const ExitCode = {
  /** The operation ran and something it checked failed (a host down, a test red). */
  failed: 1,
  /** The input was wrong: config, arguments, names. Nothing was changed. */
  usage: 2,
  /** The environment lacks something: a tool, a permission, a free port. */
  environment: 3,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export class LabError extends Error {
  readonly exitCode: ExitCode;
  /** What the person can do about it, printed after the message. */
  readonly hint?: string;
  constructor(message: string, opts: { exitCode?: ExitCode; hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'LabError';
    this.exitCode = opts.exitCode ?? ExitCode.failed;
    this.hint = opts.hint;
  }
}

/** Bad input from a person: a file, a field, an argument. Exit code 2. */
export class UsageError extends LabError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: ExitCode.usage, hint });
    this.name = 'UsageError';
  }
}

/** The machine lacks something lab needs. Exit code 3. */
export class EnvironmentError extends LabError {
  constructor(message: string, hint?: string, cause?: unknown) {
    super(message, { exitCode: ExitCode.environment, hint, cause });
    this.name = 'EnvironmentError';
  }
}

/** lab's own files cannot be written (a full disk, a read-only file system). Exit code 3. */
export class StorageError extends EnvironmentError {
  constructor(message: string, hint?: string, cause?: unknown) {
    super(message, hint, cause);
    this.name = 'StorageError';
  }
}

export function isLabError(e: unknown): e is LabError {
  return e instanceof LabError;
}

/** The message of any thrown value, for wrapping a library's error into ours. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

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

/**
 * What failed, for code that decides on it (never by matching a message):
 * usage, environment and storage are the person's or the machine's to fix;
 * tool: an external command failed (see ToolError); operation: a service
 * operation failed on a host; session: SSH to a host failed.
 */
export type ErrorKind = 'failed' | 'usage' | 'environment' | 'storage' | 'tool' | 'operation' | 'session';

export class LabError extends Error {
  readonly exitCode: ExitCode;
  readonly kind: ErrorKind;
  /** What the person can do about it, printed after the message. */
  readonly hint?: string;
  constructor(message: string, opts: { exitCode?: ExitCode; hint?: string; cause?: unknown; kind?: ErrorKind } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'LabError';
    this.exitCode = opts.exitCode ?? ExitCode.failed;
    this.kind = opts.kind ?? 'failed';
    this.hint = opts.hint;
  }
}

/** An external command (qemu-img, VBoxManage, virsh, ...) failed: what it said is kept whole, as execa keeps it. */
export class ToolError extends LabError {
  constructor(
    message: string,
    readonly tool: string,
    /** Its exit code; undefined when it did not exit (a timeout). */
    readonly code: number | undefined,
    readonly stderr: string,
  ) {
    super(message, { kind: 'tool' });
    this.name = 'ToolError';
  }
}

/** Bad input from a person: a file, a field, an argument. Exit code 2. */
export class UsageError extends LabError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: ExitCode.usage, hint, kind: 'usage' });
    this.name = 'UsageError';
  }
}

/** The machine lacks something lab needs. Exit code 3. */
export class EnvironmentError extends LabError {
  constructor(message: string, hint?: string, cause?: unknown, kind: ErrorKind = 'environment') {
    super(message, { exitCode: ExitCode.environment, hint, cause, kind });
    this.name = 'EnvironmentError';
  }
}

/** lab's own files cannot be written (a full disk, a read-only file system). Exit code 3. */
export class StorageError extends EnvironmentError {
  constructor(message: string, hint?: string, cause?: unknown) {
    super(message, hint, cause, 'storage');
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

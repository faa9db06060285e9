import { LabError, messageOf } from '../errors.js';

/**
 * A build is a list of steps that know how to undo themselves (as Packer's
 * multistep): when a step fails or the user interrupts, the undos of the
 * steps that ran are run in reverse, so a half-built VM never stays behind.
 */
export interface Step<S> {
  name: string;
  run(state: S, progress: (note: string) => void): Promise<void>;
  undo?(state: S): Promise<void>;
}

export interface StepEvents {
  start(step: string, index: number, total: number): void;
  note(step: string, note: string): void;
  done(step: string, ms: number): void;
  undo(step: string, error?: string): void;
}

export class Interrupted extends LabError {
  constructor(signal: string) {
    super(`interrupted by ${signal}`);
  }
}

export async function runSteps<S>(steps: Step<S>[], state: S, events: StepEvents, signal?: AbortSignal): Promise<void> {
  const ran: Step<S>[] = [];
  try {
    for (const [i, step] of steps.entries()) {
      if (signal?.aborted) throw new Interrupted(String(signal.reason ?? 'signal'));
      events.start(step.name, i + 1, steps.length);
      const t = performance.now();
      ran.push(step);
      await step.run(state, (note) => events.note(step.name, note));
      events.done(step.name, performance.now() - t);
    }
  } catch (e) {
    for (const step of ran.reverse()) {
      if (!step.undo) continue;
      try {
        await step.undo(state);
        events.undo(step.name);
      } catch (u) {
        events.undo(step.name, messageOf(u));
      }
    }
    throw e;
  }
}

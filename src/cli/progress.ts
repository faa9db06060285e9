import type { StepEvents } from '../hostbuilder/steps.js';

/**
 * Step progress for people: one line rewritten in place on a terminal; plain
 * lines when piped (a repeated waiting note at most every 10 s).
 */
export function stepProgress(label: string, out: NodeJS.WriteStream = process.stderr): StepEvents & { end(): void; aside(text: string): void } {
  const tty = out.isTTY === true;
  const t0 = performance.now();
  let current = '';
  let lastPlain = 0;
  let lastNote = '';
  const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(0)}s`;
  const line = (text: string) => {
    if (tty) out.write(`\r\x1b[K${label} [${elapsed()}] ${text}`);
    else out.write(`${label} [${elapsed()}] ${text}\n`);
  };
  return {
    start(step, i, n) {
      current = `${i}/${n} ${step}`;
      lastNote = '';
      line(current);
    },
    note(_step, note) {
      const kind = note.replace(/\d+/g, '#');
      const now = performance.now();
      if (!tty && kind === lastNote && now - lastPlain < 10_000) return;
      lastNote = kind;
      lastPlain = now;
      line(`${current}: ${note}`);
    },
    done(step, ms) {
      if (!tty) out.write(`${label} [${elapsed()}] ${current}: done in ${(ms / 1000).toFixed(1)} s\n`);
      else if (step) line(`${current}: done`);
    },
    undo(step, error) {
      if (tty) out.write('\n');
      out.write(`${label}: undid "${step}"${error ? ` (could not: ${error})` : ''}\n`);
    },
    end() {
      if (tty) out.write('\n');
    },
    /** A line of its own (a console line with --follow): on a terminal above the step line, which is drawn again under it. */
    aside(text) {
      if (!tty) return void out.write(`${text}\n`);
      out.write(`\r\x1b[K${text}\n`);
      if (current) line(current);
    },
  };
}

/** The part of a terminal stream this needs (process.stderr, or a stand-in in tests). */
export interface LineStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
  rows?: number;
}

/**
 * Progress by host for people: on a terminal one line per host, each
 * rewritten in place with the host's latest step; piped, plain lines as
 * they come (what logs and CI keep). Lines of their own (a console line
 * with --follow) go above the block, which is drawn again under them.
 */
export function hostLines(out: LineStream = process.stderr): { say(who: string, what: string): void; aside(line: string): void } {
  const t0 = performance.now();
  const order: string[] = [];
  const latest = new Map<string, string>();
  let drawn = 0;
  // More hosts than the terminal has rows: the cursor cannot go back up over them; plain lines from then on.
  let tty = out.isTTY === true;
  const stamp = () => `[${((performance.now() - t0) / 1000).toFixed(0).padStart(3)}s]`;
  // One row each, so that moving up by the number of hosts lands on the first.
  const fit = (s: string) => {
    // A terminal of unknown size (0 x 0: a pty nobody sized) gets the usual 80 x 24.
    const w = Math.max(20, (out.columns || 80) - 1);
    return s.length > w ? `${s.slice(0, w - 1)}…` : s;
  };
  const draw = () => {
    let s = drawn ? `\x1b[${drawn}F` : '';
    for (const who of order) s += `\x1b[2K${fit(latest.get(who)!)}\n`;
    drawn = order.length;
    out.write(s);
  };
  return {
    say(who, what) {
      const line = `${stamp()} ${who}: ${what}`;
      if (tty && !latest.has(who) && order.length + 2 > (out.rows || 24)) tty = false;
      if (!tty) return void out.write(`${line}\n`);
      if (!latest.has(who)) order.push(who);
      latest.set(who, line);
      draw();
    },
    aside(line) {
      if (!tty || drawn === 0) return void out.write(`${line}\n`);
      out.write(`\x1b[${drawn}F\x1b[J${line}\n`);
      drawn = 0;
      draw();
    },
  };
}

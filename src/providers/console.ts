/** A serial console's text as people read it: the firmware's terminal escapes taken out. */
export const consoleText = (raw: string): string => raw.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1bc/g, '');

/** A console line fit for the user's terminal: a guest's bytes carry no control characters of their own there. */
export const printable = (line: string): string => line.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');

/** The last n lines of a console that say something. */
export function lastLines(text: string, n: number): string {
  return text.split(/\r?\n/).filter((l) => l.trim()).slice(-n).join('\n');
}

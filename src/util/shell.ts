/** A string as one single-quoted POSIX shell word, whatever it holds. */
export const shellWord = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

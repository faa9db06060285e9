/** One finding of `lab doctor`. */
export interface Check {
  name: string;
  /** ok; warn: works, but not as well as it could; fail: lab cannot do this. */
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  fix?: string;
}

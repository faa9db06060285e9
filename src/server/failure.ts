import { isStorageFailure } from '../util/files.js';
import { messageOf } from '../errors.js';
import type { AppContext } from './app.js';

/**
 * What a request that failed inside the server is answered: general terms
 * for the client, the details (paths among them) in the server's log. A
 * storage failure stops the server, once answered: it must not pretend.
 */
export function serverFailure(ctx: AppContext, err: unknown, answer: (status: number, error: string) => void): void {
  ctx.log(`error: ${messageOf(err)}`);
  if (isStorageFailure(err)) {
    answer(503, 'the inventory cannot be written; the server is stopping');
    ctx.onStorageFailure?.(err);
    return;
  }
  answer(500, 'internal error; see the server log');
}

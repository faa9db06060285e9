// zod/mini, which every schema of lab uses (config, inventory, services),
// loads no locale: without this its messages would all be "Invalid input".
// These are the English ones classic zod set when it loaded.
import { config } from 'zod/mini';
import en from 'zod/v4/locales/en.js';

config(en());

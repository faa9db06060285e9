// zod/mini, which the inventory's and the services' schemas use, loads no
// locale: without this its messages would all be "Invalid input". Classic
// zod (the config's schema) sets the same English messages when it loads.
import { config } from 'zod/mini';
import en from 'zod/v4/locales/en.js';

config(en());

import { failStartup, startAll } from './stack.js';

/** `npm start`: the embedded Temporal dev server (unless TEMPORAL_ADDRESS is set), the worker and the API. */
startAll().catch(failStartup);

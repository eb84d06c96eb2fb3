// Entry point of every worker thread. heph runs as TypeScript through tsx, and a worker does not inherit the loader
// the CLI registered, so this registers it again and then loads the TypeScript module the parent named.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.module);

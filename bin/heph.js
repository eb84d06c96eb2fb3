#!/usr/bin/env node
// The daemon ships as TypeScript and runs through tsx, so there is no build step between a checkout and a running heph.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');

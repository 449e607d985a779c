#!/usr/bin/env node
// The `xivelab` command: the compiled CLI in dist/ (built by `npm run build`, which `npm ci`,
// `npm pack` and a git install run through `prepare`), started with plain node.
import '../dist/cli/main.js';

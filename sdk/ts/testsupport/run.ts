// `npm test`'s runner: builds ./cmd/fedas once into a temporary directory
// (unless $FEDAS_BIN names a binary already), then runs every test file
// with node's test runner, the binary in $FEDAS_BIN, so that the test
// processes do not each build it.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fedasBinary } from './fedas.js';

const env = { ...process.env };
let built: string | undefined;
if (!env.FEDAS_BIN) {
  env.FEDAS_BIN = fedasBinary();
  built = dirname(env.FEDAS_BIN);
}
const testDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'test');
const r = spawnSync(process.execPath, ['--test', ...process.argv.slice(2), testDir], { stdio: 'inherit', env });
if (built) rmSync(built, { recursive: true, force: true });
process.exit(r.status ?? 1);

/**
 * `node --import tsx test/rig/shell.ts [--install]`: boots the virtual rig and keeps it running for a look
 * inside (prints the ssh command and the API port); with --install, rigcam is installed first as the
 * scenarios install it. Ctrl-C ends it (the VM is discarded).
 */
import path from 'node:path';
import { tmpDir } from '../helpers/tmp.ts';
import { buildOfflineRelease, playbook, TOKEN, waitBoxReady } from './box.ts';
import { ensureImage, RigVm } from './vm.ts';

const work = tmpDir('rigcam-rig-shell-');
const vm = new RigVm(await ensureImage(), path.join(work, 'vm'));
await vm.boot();
if (process.argv.includes('--install')) {
  const run = playbook(vm, await buildOfflineRelease(path.join(work, 'release')));
  if (run.status !== 0) console.error(run.output);
  else await waitBoxReady(vm);
}
console.log(`ssh ${vm.sshArgs().join(' ')} root@127.0.0.1`);
console.log(`RIG_ATTACH='${JSON.stringify({ work: vm.work, ssh: vm.sshPort, http: vm.httpPort })}'`);
console.log(`API: http://127.0.0.1:${vm.httpPort}/ (token ${TOKEN}); serial socket ${vm.serialSock}; console ${vm.consoleLog}`);
process.on('SIGINT', () => void vm.destroy().then(() => process.exit(0)));
setInterval(() => undefined, 1 << 30);

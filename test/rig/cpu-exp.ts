import path from 'node:path';
import { tmpDir } from '../helpers/tmp.ts';
import { ensureImage, RigVm } from './vm.ts';

const vm = new RigVm(await ensureImage(), path.join(tmpDir('rig-cpuexp-'), 'vm'));
const t0 = Date.now();
await vm.boot();
console.log(`cpu=${process.env.RIG_CPU} boot ${(Date.now() - t0) / 1000}s`);
const bench = `
t() { s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$(echo "$e - $s" | bc)"; }
for i in 1 2 3; do echo "py $(t python3 -c 'import re,enum,json,subprocess,zipfile,base64,tempfile,locale,shlex,selectors,datetime,hashlib,platform,ast,inspect')"; done
for i in 1 2 3; do echo "node $(t node -e 0)"; done
echo "nodework $(t node -e 'const c=require("crypto");let h=Buffer.alloc(32);for(let i=0;i<20000;i++)h=c.createHash("sha256").update(h).digest();let s=0;for(let i=0;i<3e6;i++)s+=i%7;')"
echo "pycompile $(t python3 -c 'import compileall,sys; compile(open("/usr/lib/python3.13/typing.py").read(),"x","exec")')"
`;
console.log(await vm.run(`command -v bc >/dev/null || true; ${bench.replace(/\$\(echo "\$e - \$s" \| bc\)/, '$(awk "BEGIN{print $e - $s}")')}`));
const s1 = Date.now();
await vm.run('head -c 30000000 /dev/zero | sha256sum');
console.log(`sha256 30MB ${(Date.now() - s1) / 1000}s`);
await vm.destroy();
process.exit(0);

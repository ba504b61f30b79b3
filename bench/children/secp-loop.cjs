// (a) Raw libsecp256k1 signing rate on one core: ecdsaSign(msg32, key32) in a loop, the message
// changing every call. Prints one JSON line {signs, seconds, signsPerSecond}.
'use strict';
const { randomBytes } = require('node:crypto');
const secp = require('secp256k1/bindings');

const seconds = Number(process.argv[2] ?? 3);
let key;
do key = randomBytes(32);
while (!secp.privateKeyVerify(key));
const msg = randomBytes(32);

function loop(ms) {
  let n = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(ms * 1e6));
  let now = start;
  while (now < end) {
    for (let i = 0; i < 500; i++) {
      msg.writeUInt32BE(n >>> 0, 0);
      msg.writeUInt32BE(i, 4);
      secp.ecdsaSign(msg, key);
      n += 1;
    }
    now = process.hrtime.bigint();
  }
  return { signs: n, seconds: Number(now - start) / 1e9 };
}

loop(300); // warm-up
const { signs, seconds: elapsed } = loop(seconds * 1000);
const cpu = process.cpuUsage();
process.stdout.write(`${JSON.stringify({ signs, seconds: elapsed, signsPerSecond: signs / elapsed, processCpuSeconds: (cpu.user + cpu.system) / 1e6 })}\n`);

// node bench/grpc-isolation/prof.mjs FILE.cpuprofile [N]: self time of a --cpu-prof profile by package/file and by function (top N).
import { readFileSync } from 'node:fs';
const [file, n = 25] = process.argv.slice(2);
const p = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(p.nodes.map((x) => [x.id, x]));
const self = new Map();
const dt = p.timeDeltas;
let total = 0;
for (let i = 0; i < p.samples.length; i++) {
  const node = byId.get(p.samples[i]);
  const d = dt[i] ?? 0;
  total += d;
  self.set(node.id, (self.get(node.id) ?? 0) + d);
}
const fn = new Map(), grp = new Map();
for (const [id, t] of self) {
  const cf = byId.get(id).callFrame;
  const key = `${cf.functionName || '(anon)'} ${cf.url.replace(/.*node_modules\//, '').replace(/.*\/(dist|src)\//, '$1/')}:${cf.lineNumber}`;
  fn.set(key, (fn.get(key) ?? 0) + t);
  let g = cf.url === '' ? cf.functionName : cf.url.includes('node_modules/') ? cf.url.replace(/.*node_modules\/((@[^/]+\/)?[^/]+).*/, '$1') : cf.url.startsWith('node:') ? cf.url : cf.url.replace(/.*\/(dist\/[^/]+\/[^/]+).*/, '$1');
  grp.set(g, (grp.get(g) ?? 0) + t);
}
const pr = (m, k) => [...m].sort((a, b) => b[1] - a[1]).slice(0, k).forEach(([key, t]) => console.log(`${((t / total) * 100).toFixed(1).padStart(5)}%  ${(t / 1000).toFixed(0).padStart(6)} ms  ${key}`));
console.log(`total ${(total / 1000).toFixed(0)} ms`);
console.log('-- groups'); pr(grp, 20);
console.log('-- functions'); pr(fn, Number(n));

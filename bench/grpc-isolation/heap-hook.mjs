// GEN_ARGS="--import $PWD/bench/grpc-isolation/heap-hook.mjs" node bench/grpc-isolation/probe.mjs ...: in the generator
// process, samples (V8 sampling heap profiler, 1.5-4 s into its run) the allocations that survive a scavenge and die in
// a major GC (what makes scavenges slow); writes the top allocation sites to /tmp/heap-PID.txt.
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
if (process.send !== undefined) {
  const s = new Session();
  s.connect();
  const post = (m, p) => new Promise((res, rej) => s.post(m, p, (e, r) => (e ? rej(e) : res(r))));
  setTimeout(async () => {
    await post('HeapProfiler.enable');
    await post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: process.env.MINOR === '1' });
    setTimeout(async () => {
      const { profile } = await post('HeapProfiler.stopSampling');
      const self = new Map();
      let total = 0;
      const walk = (n, stack) => {
        const cf = n.callFrame;
        const here = `${cf.functionName || '(anon)'} ${cf.url.replace(/.*node_modules\//, '').replace(/.*\/dist\//, '')}:${cf.lineNumber}`;
        const st = [here, ...stack].slice(0, 4);
        if (n.selfSize > 0) { const k = st.join(' < '); self.set(k, (self.get(k) ?? 0) + n.selfSize); total += n.selfSize; }
        for (const c of n.children) walk(c, st);
      };
      walk(profile.head, []);
      const lines = [...self].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([k, v]) => `${(v / 1024).toFixed(0).padStart(7)} KB ${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}`);
      writeFileSync(`/tmp/heap-${process.pid}.txt`, `total sampled ${(total / 1048576).toFixed(1)} MB\n${lines.join('\n')}\n`);
    }, 2500).unref();
  }, 1500).unref();
}

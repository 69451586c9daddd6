import { runGeneratorProcess } from '../../src/load/fork-generator.js';
import type { GrpcTargetOptions } from '../../src/load/grpc-target.js';
import type { HttpTargetOptions } from '../../src/load/http-target.js';
import { formatMs, formatRate } from '../../src/load/format.js';
import { LOAD_RUN_FORMAT, machineInfo, type LoadRun } from '../../src/load/load-run.js';
import { resolveLoadSettings, type LoadSettings } from '../../src/load/load-runner.js';

/**
 * One open-loop sweep over HTTP (or the OIP gRPC service, with `grpc`) from the load generator's own process: rising rates until three in a row miss
 * the SLO (a missed rate is measured once more first: this machine stalls now and then). Returns the run as
 * `clipper-ts loadtest --json` would print it, so reports and `--compare` read it.
 */
export async function httpSweep(label: string, http: HttpTargetOptions, load: Partial<LoadSettings>, log: (line: string) => void, grpc?: GrpcTargetOptions): Promise<LoadRun> {
  const settings = resolveLoadSettings({ stopAfterMisses: 3, retries: 1, ...load });
  const startedAt = new Date().toISOString();
  log(`${label}:`);
  const { outcome, target } = await runGeneratorProcess(
    { http, ...(grpc === undefined ? {} : { grpc }), inputs: { repeatShare: 0, seed: settings.seed }, load: settings },
    {
      onRate: (r) =>
        log(
          `  offered ${formatRate(r.offered).padStart(7)}/s  achieved ${formatRate(r.achieved).padStart(7)}/s  p50 ${formatMs(r.latency.p50).padStart(6)}  p99 ${formatMs(r.latency.p99).padStart(6)} ms  ` +
            `refused ${r.refused}  errors ${r.errors}  late ${r.late}  batch ${r.meanBatch === null ? '-' : r.meanBatch.toFixed(1)}  generator ${((r.generatorCpu ?? 0) * 100).toFixed(0)}% cpu  ` +
            `${!r.valid ? 'INVALID' : r.meetsSlo ? 'ok' : 'missed'}${r.attempts > 1 ? ' (2nd try)' : ''}`,
        ),
    },
  );
  return { format: LOAD_RUN_FORMAT, label, startedAt, target, settings: { ...settings, ...http }, machine: machineInfo(), ...outcome };
}

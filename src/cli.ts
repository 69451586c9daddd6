#!/usr/bin/env node
/**
 * The `clipper-ts` command. `clipper-ts serve [flags]` starts the HTTP server (see `--help`).
 */
import { ClipperError } from './errors.js';
import { tuneGarbageCollector } from './http/gc-tuning.js';
import { serve } from './http/serve.js';
import { resolveServeSettings, serveDefaults } from './http/settings.js';

const help = `clipper-ts serve [flags]      start the server on the bundled MNIST models
clipper-ts admin COMMAND      manage a running server (clipper-ts admin help)
clipper-ts deploy PATH --app NAME   serve a model file: copy, configure, deploy, link (clipper-ts deploy --help)
clipper-ts loadtest [flags]   open-loop load test (clipper-ts loadtest --help)
clipper-ts container --nats URL --model NAME --version V   a model container over NATS (clipper-ts container --help)

  --port N                 query port: Clipper REST, Open Inference Protocol, /metrics (default ${serveDefaults.port})
  --host ADDR              query address (default ${serveDefaults.host})
  --admin-port N           admin port: /admin/*, /v2/repository/* (default ${serveDefaults.adminPort})
  --grpc-port N            gRPC port: the Open Inference Protocol's inference.GRPCInferenceService (default ${serveDefaults.grpcPort}; 0 = off)
  --admin-host ADDR        admin address (default ${serveDefaults.adminHost}; any other needs --admin-token)
  --admin-token TOKEN      require Authorization: Bearer TOKEN on the admin port
  --models DIR             model repository (default: the bundled models/)
  --replicas N             replicas per model (default ${serveDefaults.replicas})
  --no-bundled             start empty: no bundled models, no digits application
  --slo-ms N               the digits application's latency SLO (default ${serveDefaults.sloMs})
  --policy P               the digits application's policy: static, exp3, exp4 (default ${serveDefaults.policy})
  --log-level LEVEL        fatal, error, warn, info, debug, trace, silent (default ${serveDefaults.logLevel})
  --body-limit BYTES       largest request body (default ${serveDefaults.bodyLimit})
  --max-array-length N     most numbers in one request array (default ${serveDefaults.maxArrayLength})
  --infer-timeout-ms N     OIP infer timeout when a request sets none (default ${serveDefaults.inferTimeoutMs})
  --max-event-loop-delay-ms N  refuse queries (503) before reading them while the event loop lags more (default ${serveDefaults.maxEventLoopDelayMs}; 0 = off)
  --shed-status 429|503        HTTP status of a query refused for overload (default ${serveDefaults.shedStatus}; 429 where a load balancer ejects 503 backends)
  --shutdown-timeout-ms N  bound on a graceful shutdown (default ${serveDefaults.shutdownTimeoutMs})
  --otlp-endpoint URL      send OpenTelemetry traces over OTLP/HTTP to this collector (e.g. http://localhost:4318;
                           also OTEL_EXPORTER_OTLP_ENDPOINT); no traces when unset
  --state FILE             keep the control-plane state (apps, models, links, replicas, policies) in FILE, written
                           atomically and read back at start (default ./${serveDefaults.state}; none on --port 0; off = none)
  --nats URL               share the control plane with every frontend on this NATS (JetStream bucket clipper-config,
                           feedback stream CLIPPER_FEEDBACK) instead of a state file
  --remote                 with --nats: run models in model containers (clipper-ts container); each container
                           announced for a version becomes one of its replicas
  --config FILE            a JSON file of the same settings in camelCase (port, adminToken, ...)

Every flag also reads from the environment as CLIPPER_<NAME> (CLIPPER_PORT, CLIPPER_ADMIN_TOKEN, ...).
Precedence: flags, then environment, then --config file, then defaults.`;

async function main(argv: string[]): Promise<number> {
  const [command = 'serve', ...rest] = argv;
  if (command === 'loadtest') return (await import('./load/loadtest.js')).main(rest);
  if (command === 'admin') return (await import('./admin-cli/admin-commands.js')).adminMain(rest);
  if (command === 'deploy') return (await import('./admin-cli/deploy-command.js')).deployMain(rest);
  if (command === 'container') return (await import('./cluster/container-command.js')).containerMain(rest);
  if (command === '--help' || command === '-h' || command === 'help') {
    console.log(help);
    return 0;
  }
  if (command !== 'serve') {
    console.error(`unknown command ${JSON.stringify(command)}\n\n${help}`);
    return 2;
  }
  if (rest.includes('--help')) {
    console.log(help);
    return 0;
  }
  let settings;
  try {
    settings = resolveServeSettings(rest);
  } catch (error) {
    console.error(`clipper-ts: ${(error as Error).message}`);
    return 2;
  }
  // Fewer, later mark-compacts: each one's pause and concurrent marking cost queries their deadline (issue 15).
  tuneGarbageCollector();
  // The handlers go in before the server starts, so a signal while the models load still drains and exits 0
  // instead of killing the process with queries in flight.
  const starting = serve(settings);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    console.log(`clipper-ts: ${signal}, draining`);
    const timer = setTimeout(() => {
      console.error(`clipper-ts: shutdown took longer than ${settings.shutdownTimeoutMs} ms, exiting`);
      process.exit(1);
    }, settings.shutdownTimeoutMs);
    timer.unref();
    starting.then((server) => server.close()).then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  const server = await starting;
  console.log(`clipper-ts listening: queries on ${server.queryUrl} (Clipper REST, OIP /v2, /metrics), admin on ${server.adminUrl}`);
  if (server.grpcAddress !== undefined) console.log(`OIP over gRPC on ${server.grpcAddress} (inference.GRPCInferenceService, src/grpc/grpc_service.proto)`);
  if (settings.bundled) console.log(`ready: application "digits" -> ${server.clipper.getLinkedModels('digits').join(', ')}; try: curl -s ${server.queryUrl}/v2/health/ready`);
  return -1;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error instanceof ClipperError ? `clipper-ts: ${error.message}` : error);
    process.exitCode = 1;
  },
);

/**
 * deploy/: the Dockerfile and the Kubernetes manifests, checked against the code they run. Every manifest parses;
 * every command, flag and environment variable they give `clipper-ts` is one the CLI takes (the flag lists come
 * from the CLI's own parsers, src/http/settings.ts and src/cluster/container-command.ts); ports, probes, Services,
 * PodDisruptionBudgets and autoscalers point at things that exist; the probe paths and the autoscaling metric are
 * answered by a real server started from the frontend's own arguments.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import yaml from 'js-yaml';
import { projectRoot } from '../../../src/paths.js';
import { resolveServeSettings, serveEnvironment, serveFlags } from '../../../src/http/settings.js';
import { serve } from '../../../src/http/serve.js';
import { containerOptions, parseContainerArgs } from '../../../src/cluster/container-command.js';

const deployDir = path.join(projectRoot, 'deploy');
const k8sDir = path.join(deployDir, 'k8s');
const cli = path.join(projectRoot, 'dist', 'src', 'cli.js');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = Record<string, any>;

const files = readdirSync(k8sDir).filter((f) => f.endsWith('.yaml'));
const docsByFile = new Map(files.map((f) => [f, (yaml.loadAll(readFileSync(path.join(k8sDir, f), 'utf8')) as Doc[]).filter((d) => d !== null && d !== undefined)]));
const resources = [...docsByFile.entries()].flatMap(([file, docs]) => docs.filter((d) => typeof d.kind === 'string').map((d) => ({ file, ...d }) as Doc));
const ofKind = (kind: string): Doc[] => resources.filter((r) => r.kind === kind);
const deployments = ofKind('Deployment');
const podContainers = deployments.flatMap((d) => (d.spec.template.spec.containers as Doc[]).map((c) => ({ deployment: d, container: c })));
const commandOf = (c: Doc): { command: string; args: string[] } => {
  const args = (c.args as unknown[]).map(String);
  return { command: args[0] as string, args: args.slice(1) };
};
const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean => Object.entries(selector).every(([k, v]) => labels[k] === v);
const flagsIn = (args: readonly string[]): string[] => args.filter((a) => a.startsWith('--')).map((a) => a.slice(2).split('=')[0] as string);

/** The Dockerfile's instructions: [INSTRUCTION, rest] with continuation lines joined and comments dropped. */
function dockerfile(): [string, string][] {
  const text = readFileSync(path.join(deployDir, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('#'))
    .map((l) => {
      const at = l.indexOf(' ');
      return [l.slice(0, at).toUpperCase(), l.slice(at + 1).trim()];
    });
}

test('every manifest parses, names its kind, and the kustomization lists every resource file', (t) => {
  t.true(files.length >= 4, files.join(', '));
  for (const r of resources.filter((d) => d.kind !== 'Kustomization')) {
    t.is(typeof r.apiVersion, 'string', `${r.file}: apiVersion`);
    t.is(typeof r.metadata?.name, 'string', `${r.file}: ${r.kind} has a name`);
  }
  const kustomization = resources.find((r) => r.kind === 'Kustomization') as Doc;
  const withResources = files.filter((f) => (docsByFile.get(f) ?? []).some((d) => typeof d.kind === 'string' && d.kind !== 'Kustomization'));
  t.deepEqual([...(kustomization.resources as string[])].sort(), withResources.sort());
  for (const kind of ['Deployment', 'Service', 'PodDisruptionBudget', 'HorizontalPodAutoscaler']) t.true(ofKind(kind).length > 0, kind);
});

test('every command the manifests and the Dockerfile run is a clipper-ts command, with flags its parser takes', async (t) => {
  const run = promisify(execFile);
  const commands = new Set(podContainers.map(({ container }) => commandOf(container).command));
  const cmd = dockerfile().find(([i]) => i === 'CMD')?.[1] as string;
  const dockerArgs = JSON.parse(cmd) as string[];
  commands.add(dockerArgs[0] as string);
  t.deepEqual([...commands].sort(), ['container', 'serve']);
  // The command exists: `clipper-ts COMMAND --help` answers 0 (an unknown command exits 2).
  for (const command of commands) await t.notThrowsAsync(run(process.execPath, [cli, command, '--help'], { timeout: 20_000 }), command);
  await t.throwsAsync(run(process.execPath, [cli, 'no-such-command', '--help'], { timeout: 20_000 }));

  const serveKnown = new Set(serveFlags());
  const containerKnown = new Set(Object.keys(containerOptions));
  const envKnown = new Set(serveEnvironment());
  const check = (where: string, command: string, args: string[], env: Record<string, string>): void => {
    if (command === 'serve') {
      for (const flag of flagsIn(args)) t.true(serveKnown.has(flag), `${where}: serve takes no --${flag}`);
      for (const name of Object.keys(env)) t.true(envKnown.has(name), `${where}: serve reads no ${name}`);
      t.notThrows(() => resolveServeSettings(args, env), where);
    } else {
      for (const flag of flagsIn(args)) t.true(containerKnown.has(flag), `${where}: container takes no --${flag}`);
      const parsed = parseContainerArgs(args);
      t.true(existsSync(path.join(projectRoot, 'models', parsed.model, parsed.version, 'model.onnx')), `${where}: models/${parsed.model}/${parsed.version}/model.onnx is in the image`);
    }
  };
  for (const { deployment, container } of podContainers) {
    const { command, args } = commandOf(container);
    const env = Object.fromEntries(((container.env ?? []) as Doc[]).map((e) => [e.name as string, String(e.value ?? 'from-a-secret')]));
    check(`${deployment.file} ${deployment.metadata.name}`, command, args, env);
  }
  check('Dockerfile CMD', dockerArgs[0] as string, dockerArgs.slice(1), {});
});

test('one container Deployment per model version, each with a PodDisruptionBudget and an autoscaler', (t) => {
  const versions = podContainers.filter(({ container }) => commandOf(container).command === 'container').map(({ deployment, container }) => {
    const parsed = parseContainerArgs(commandOf(container).args);
    return { deployment, key: `${parsed.model}@${parsed.version}` };
  });
  t.true(versions.length >= 1);
  t.is(new Set(versions.map((v) => v.key)).size, versions.length, 'no model version has two Deployments');
  const pdbs = ofKind('PodDisruptionBudget');
  const hpas = ofKind('HorizontalPodAutoscaler');
  for (const d of deployments) {
    const labels = d.spec.template.metadata.labels as Record<string, string>;
    t.true(matches(d.spec.selector.matchLabels, labels), `${d.metadata.name}: selector matches its pods`);
    t.is(pdbs.filter((p) => matches(p.spec.selector.matchLabels, labels)).length, 1, `${d.metadata.name}: one PodDisruptionBudget`);
    t.true(d.spec.template.spec.securityContext?.runAsNonRoot === true, `${d.metadata.name}: runs as non-root`);
  }
  for (const { deployment } of versions) {
    const hpa = hpas.find((h) => h.spec.scaleTargetRef.name === deployment.metadata.name) as Doc;
    t.truthy(hpa, `${deployment.metadata.name}: an autoscaler`);
    t.true(hpa.spec.minReplicas <= hpa.spec.maxReplicas);
  }
  for (const hpa of hpas) t.truthy(deployments.find((d) => d.metadata.name === hpa.spec.scaleTargetRef.name), `${hpa.metadata.name} scales an existing Deployment`);
});

test('the frontend: ports from its settings, Services and probes on them, and the probe paths and the queue-depth metric served', async (t) => {
  const frontends = podContainers.filter(({ container }) => commandOf(container).command === 'serve');
  t.is(frontends.length, 1);
  const { deployment, container } = frontends[0] as { deployment: Doc; container: Doc };
  const env = Object.fromEntries(((container.env ?? []) as Doc[]).map((e) => [e.name as string, 'from-a-secret']));
  const settings = resolveServeSettings(commandOf(container).args, env);
  const ports = new Map(((container.ports ?? []) as Doc[]).map((p) => [p.name as string, p.containerPort as number]));
  t.is(ports.get('http'), settings.port);
  t.is(ports.get('admin'), settings.adminPort);
  t.is(ports.get('grpc'), settings.grpcPort as number);
  const named = (port: string | number): number | undefined => (typeof port === 'number' ? port : ports.get(port));
  t.is(container.readinessProbe.httpGet.path, '/v2/health/ready');
  t.is(named(container.readinessProbe.httpGet.port), settings.port);
  t.is(container.livenessProbe.httpGet.path, '/v2/health/live');
  t.is(named(container.livenessProbe.httpGet.port), settings.port);
  const podLabels = deployment.spec.template.metadata.labels as Record<string, string>;
  const services = ofKind('Service').filter((s) => matches(s.spec.selector, podLabels));
  t.true(services.length >= 1);
  for (const s of services) for (const p of s.spec.ports as Doc[]) t.not(named(p.targetPort), undefined, `${s.metadata.name}: targetPort ${p.targetPort}`);

  // The same settings on free ports, without NATS: the probe paths answer, and /metrics has the HPA's metric.
  const server = await serve({ ...settings, port: 0, adminPort: 0, grpcPort: 0, nats: undefined, remote: false, state: undefined, bundled: false, logLevel: 'silent', adminHost: '127.0.0.1' });
  try {
    for (const probe of [container.readinessProbe, container.livenessProbe]) {
      t.is((await fetch(`${server.queryUrl}${probe.httpGet.path}`)).status, 200, probe.httpGet.path);
    }
    const metrics = await (await fetch(`${server.queryUrl}/metrics`)).text();
    for (const hpa of ofKind('HorizontalPodAutoscaler')) {
      for (const m of hpa.spec.metrics as Doc[]) {
        const name = m.external.metric.name as string;
        t.regex(metrics, new RegExp(`^# TYPE ${name} gauge$`, 'm'), `${hpa.metadata.name}: the frontend exports ${name}`);
      }
    }
  } finally {
    await server.close();
  }
});

test('the Dockerfile: multi-stage, tsc in the build stage, npm ci --omit=dev and a non-root user in the last, sources that exist', (t) => {
  const lines = dockerfile();
  const froms = lines.flatMap(([i, rest], at) => (i === 'FROM' ? [at] : []));
  t.true(froms.length >= 2, 'multi-stage');
  const last = lines.slice(froms[froms.length - 1]);
  const build = lines.slice(0, froms[froms.length - 1]);
  t.true(build.some(([i, rest]) => i === 'RUN' && /\btsc\b/.test(rest)), 'the build stage runs tsc');
  t.true(last.some(([i, rest]) => i === 'RUN' && /npm ci --omit=dev/.test(rest)), 'npm ci --omit=dev');
  t.false(last.some(([i, rest]) => i === 'RUN' && /npm (ci|install)(?!.*--omit=dev)/.test(rest)), 'no dev dependencies in the last stage');
  const user = last.filter(([i]) => i === 'USER').at(-1)?.[1];
  t.truthy(user);
  t.false(user === 'root' || user === '0', `USER ${user}`);
  const entry = JSON.parse(last.find(([i]) => i === 'ENTRYPOINT')?.[1] as string) as string[];
  t.is(entry[0], 'node');
  t.true(existsSync(path.join(projectRoot, entry[1] as string)), `${entry[1]} is built`);
  for (const [i, rest] of lines) {
    if (i !== 'COPY' || rest.startsWith('--from')) continue;
    const parts = rest.split(/\s+/);
    for (const source of parts.slice(0, -1)) t.true(existsSync(path.join(projectRoot, source)), `COPY ${source}: exists in the repository`);
  }
  const settings = resolveServeSettings([], {});
  const exposed = last.filter(([i]) => i === 'EXPOSE').flatMap(([, rest]) => rest.split(/\s+/).map(Number));
  t.deepEqual(exposed.sort(), [settings.port, settings.adminPort, settings.grpcPort as number].sort());
});

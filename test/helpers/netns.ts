/**
 * Another "host" on this machine: a network namespace of a test's own, joined to the machine by a veth pair, so
 * that a process started inside it reaches the machine only over that link, and the test can cut the link
 * (`ip link set <host side> down`) as a network partition would.
 *
 * Each one gets a random suffix (namespace `clp-<suffix>`, interfaces `cv<suffix>h` on the machine and
 * `cv<suffix>n` in the namespace) and a private /30 of 10.0.0.0/8 that no address or route of the machine
 * overlaps. Needs root and iproute2 (`ip`), as CI has (.ci/run installs iproute2 when missing). Where `ip netns`
 * is not usable, tests skip with the reason, except in CI (CI=true), where that is a failure.
 */
import { execFileSync, type SpawnOptions, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';

const IP_CANDIDATES = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'];

/** The `ip` binary of iproute2, or undefined when it is not installed. */
export function ipBinary(): string | undefined {
  return IP_CANDIDATES.find((c) => existsSync(c));
}

function ip(args: string[]): string {
  const binary = ipBinary();
  if (binary === undefined) throw new Error('ip (iproute2) is not installed: apt-get install iproute2 (.ci/run does it)');
  return execFileSync(binary, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Why network namespaces cannot be used here, or undefined when they can: makes and deletes a namespace with a
 * veth pair, as a test would.
 */
export function netnsUnusable(): string | undefined {
  if (ipBinary() === undefined) return 'ip (iproute2) is not installed';
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  const suffix = randomBytes(3).toString('hex');
  const name = `clp-probe-${suffix}`;
  try {
    ip(['netns', 'add', name]);
  } catch (error) {
    return `ip netns add failed: ${stderrOf(error)}`;
  }
  try {
    ip(['link', 'add', `cv${suffix}h`, 'type', 'veth', 'peer', 'name', `cv${suffix}n`, 'netns', name]);
    ip(['link', 'del', `cv${suffix}h`]);
    return undefined;
  } catch (error) {
    return `making a veth pair failed: ${stderrOf(error)}`;
  } finally {
    try {
      ip(['netns', 'del', name]);
    } catch {
      // Gone already.
    }
  }
}

function stderrOf(error: unknown): string {
  const stderr = (error as { stderr?: string | Buffer }).stderr;
  const text = stderr === undefined ? '' : stderr.toString().trim();
  return text !== '' ? text : error instanceof Error ? error.message : String(error);
}

/** IPv4 networks the machine has (its addresses' and its routes' prefixes), as [first, last] address numbers. */
function machineNetworks(): [number, number][] {
  const networks: [number, number][] = [];
  const add = (prefix: string): void => {
    const [address, bits] = prefix.split('/');
    const n = parseIpv4(address ?? '');
    if (n === undefined) return;
    const length = bits === undefined ? 32 : Number(bits);
    const size = 2 ** (32 - length);
    const first = Math.floor(n / size) * size;
    networks.push([first, first + size - 1]);
  };
  for (const link of JSON.parse(ip(['-j', '-4', 'addr', 'show'])) as { addr_info?: { local: string; prefixlen: number }[] }[]) {
    for (const a of link.addr_info ?? []) add(`${a.local}/${a.prefixlen}`);
  }
  for (const route of JSON.parse(ip(['-j', '-4', 'route', 'show', 'table', 'all'])) as { dst: string }[]) {
    if (route.dst !== 'default') add(route.dst);
  }
  return networks;
}

function parseIpv4(text: string): number | undefined {
  const parts = text.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return undefined;
  return (((parts[0] as number) * 256 + (parts[1] as number)) * 256 + (parts[2] as number)) * 256 + (parts[3] as number);
}

const formatIpv4 = (n: number): string => [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');

/** A namespace joined to the machine by a veth pair; {@link close} removes both. */
export class NetnsLink {
  /** The namespace's name (`ip netns exec <name> ...`). */
  readonly namespace: string;
  /** The veth end on the machine: taking it down cuts the namespace off. */
  readonly hostInterface: string;
  readonly nsInterface: string;
  /** The machine's address on the link (what a process in the namespace connects to). */
  readonly hostAddress: string;
  readonly nsAddress: string;
  readonly #children = new Set<ChildProcess>();
  #closed = false;

  private constructor(suffix: string, base: number) {
    this.namespace = `clp-${suffix}`;
    this.hostInterface = `cv${suffix}h`;
    this.nsInterface = `cv${suffix}n`;
    this.hostAddress = formatIpv4(base + 1);
    this.nsAddress = formatIpv4(base + 2);
  }

  /** Makes the namespace, the veth pair and their addresses, both ends up. */
  static create(): NetnsLink {
    const taken = machineNetworks();
    for (let attempt = 0; attempt < 20; attempt++) {
      // A /30 in 10.64.0.0-10.254.255.255, clear of every network the machine has.
      const base = parseIpv4(`10.${randomInt(64, 255)}.${randomInt(0, 256)}.${randomInt(0, 64) * 4}`) as number;
      if (taken.some(([first, last]) => base <= last && base + 3 >= first)) continue;
      const link = new NetnsLink(randomBytes(4).toString('hex').slice(0, 8), base);
      try {
        link.#setUp();
      } catch (error) {
        link.close();
        throw new Error(`setting up network namespace ${link.namespace}: ${stderrOf(error)}`, { cause: error });
      }
      return link;
    }
    throw new Error('found no free /30 in 10.0.0.0/8 for the veth pair');
  }

  #setUp(): void {
    ip(['netns', 'add', this.namespace]);
    ip(['link', 'add', this.hostInterface, 'type', 'veth', 'peer', 'name', this.nsInterface, 'netns', this.namespace]);
    ip(['addr', 'add', `${this.hostAddress}/30`, 'dev', this.hostInterface]);
    ip(['link', 'set', this.hostInterface, 'up']);
    ip(['-n', this.namespace, 'addr', 'add', `${this.nsAddress}/30`, 'dev', this.nsInterface]);
    ip(['-n', this.namespace, 'link', 'set', this.nsInterface, 'up']);
    ip(['-n', this.namespace, 'link', 'set', 'lo', 'up']);
  }

  /** Takes the machine's end of the link down (a partition) or up again. */
  setLink(state: 'up' | 'down'): void {
    ip(['link', 'set', this.hostInterface, state]);
  }

  /** Starts `command args` inside the namespace (`ip netns exec`, which execs it: the child is the command). */
  spawn(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn(ipBinary() as string, ['netns', 'exec', this.namespace, command, ...args], options);
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    return child;
  }

  /** Kills what it started in the namespace (SIGKILL), deletes the namespace and the veth pair. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const child of this.#children) child.kill('SIGKILL');
    for (const args of [
      ['netns', 'del', this.namespace],
      ['link', 'del', this.hostInterface],
    ]) {
      try {
        ip(args);
      } catch {
        // Not made, or gone with the namespace.
      }
    }
  }
}

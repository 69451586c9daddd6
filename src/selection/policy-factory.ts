import { AbSplitPolicy } from './ab-policy.js';
import { InvalidOptionError } from '../errors.js';
import { Exp3Policy, type Exp3Options } from './exp3-policy.js';
import { Exp4Policy, type Exp4Options } from './exp4-policy.js';
import { KeyedPolicy } from './keyed-policy.js';
import { StaticPolicy, type SelectionPolicy } from './selection-policy.js';

/**
 * A selection policy by name and options, as the admin API and `registerApp({ policy })` take it.
 * `perUser` keeps one learned policy per query `uid` (at most `maxKeys`, least recently used dropped).
 */
export type PolicySpec = (
  | { kind: 'static'; model?: string }
  | ({ kind: 'exp3' } & Omit<Exp3Options, 'random'>)
  | ({ kind: 'exp4' } & Exp4Options)
  | { kind: 'ab'; weights: Record<string, number>; seed?: number }
) & { perUser?: { maxKeys?: number; inheritShared?: boolean } };

const kinds = ['static', 'exp3', 'exp4', 'ab'];

/** Builds a policy from its spec; options are validated by each policy, with messages that name them. */
export function createPolicy(spec: PolicySpec): SelectionPolicy {
  if (typeof spec !== 'object' || spec === null || !kinds.includes((spec as { kind?: string }).kind as string)) {
    throw new InvalidOptionError(`policy.kind must be one of ${kinds.map((k) => JSON.stringify(k)).join(', ')}; got ${JSON.stringify((spec as { kind?: unknown } | null)?.kind)}`);
  }
  const { perUser, ...rest } = spec;
  const make = (): SelectionPolicy => {
    const { kind, ...options } = rest as { kind: string } & Record<string, unknown>;
    switch (kind) {
      case 'static':
        return new StaticPolicy(options.model as string | undefined);
      case 'exp3':
        return new Exp3Policy(options as Exp3Options);
      case 'exp4':
        return new Exp4Policy(options as Exp4Options);
      default: {
        const { weights, ...abOptions } = options as { weights: Record<string, number> };
        return new AbSplitPolicy(weights, abOptions);
      }
    }
  };
  const first = make();
  if (perUser === undefined) return first;
  return new KeyedPolicy(make, perUser);
}

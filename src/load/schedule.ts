/** Most rates one schedule may hold: a typo such as `100..1000000+1` should fail, not run for days. */
export const MAX_SCHEDULE_RATES = 200;

/**
 * Parses a schedule of rates (queries per second), in the order they will run:
 * - `2000`: one rate;
 * - `1000,2000,5000`: a list;
 * - `1000..20000x1.5`: geometric, from 1000 multiplying by 1.5 while within 20000 (rounded to integers);
 * - `1000..10000+1000`: arithmetic, from 1000 adding 1000 while within 10000.
 * Pieces can be joined with commas (`500,1000..8000x2`). Throws a RangeError that names the bad piece.
 *
 * @example
 * parseRateSchedule('1000..8000x2'); // [1000, 2000, 4000, 8000]
 */
export function parseRateSchedule(text: string): number[] {
  const source = text.trim();
  if (source === '') throw new RangeError('a rate schedule must not be empty; e.g. 2000, 1000,2000,4000, 1000..20000x1.5 or 1000..10000+1000');
  const rates: number[] = [];
  for (const raw of source.split(',')) {
    const piece = raw.trim();
    const range = /^(\d+(?:\.\d+)?)\.\.(\d+(?:\.\d+)?)([x*+])(\d+(?:\.\d+)?)$/.exec(piece);
    if (range !== null) {
      const from = positive(range[1] as string, piece);
      const to = positive(range[2] as string, piece);
      const step = positive(range[4] as string, piece);
      if (to < from) throw new RangeError(`rate range ${JSON.stringify(piece)} must not fall: ${from} > ${to}`);
      const geometric = range[3] !== '+';
      if (geometric && step <= 1) throw new RangeError(`rate range ${JSON.stringify(piece)}: the factor must be above 1; got ${step}`);
      for (let r = from; r <= to * (1 + 1e-9); r = geometric ? r * step : r + step) {
        pushRate(rates, Math.round(r), text);
      }
      continue;
    }
    pushRate(rates, positive(piece, piece), text);
  }
  return rates;
}

function pushRate(rates: number[], rate: number, text: string): void {
  if (rate < 1) throw new RangeError(`rates must be at least 1 query per second; ${JSON.stringify(text)} gives ${rate}`);
  if (rates.length >= MAX_SCHEDULE_RATES) throw new RangeError(`rate schedule ${JSON.stringify(text)} has more than ${MAX_SCHEDULE_RATES} rates`);
  if (rates[rates.length - 1] !== rate) rates.push(rate);
}

function positive(value: string, piece: string): number {
  const n = Number(value);
  if (value === '' || !Number.isFinite(n) || n <= 0) {
    throw new RangeError(`rate schedule piece ${JSON.stringify(piece)} is not a positive number or a range (FROM..TOxFACTOR or FROM..TO+STEP)`);
  }
  return n;
}

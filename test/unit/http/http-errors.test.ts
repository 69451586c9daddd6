import test from 'ava';
import Fastify, { type FastifyInstance, type InjectOptions } from 'fastify';
import { errorCatalogue, InvalidInputError, OverloadedError } from '../../../src/errors.js';
import { installErrorHandling } from '../../../src/http/http-errors.js';

/** code -> status, from the catalogue: the only codes and statuses a client may see. */
const catalogue = new Map<string, number>(errorCatalogue.map((Class): [string, number] => {
  const error = Class === OverloadedError ? new OverloadedError('x') : new (Class as typeof InvalidInputError)('x');
  return [error.code, error.status];
}));

function server(): FastifyInstance {
  // As the query server: no type coercion, so `{"input": 5}` fails validation instead of becoming [5].
  const app = Fastify({ logger: false, bodyLimit: 1024, ajv: { customOptions: { coerceTypes: false } } });
  installErrorHandling(app);
  app.post('/typed', { schema: { body: { type: 'object', required: ['input'], properties: { input: { type: 'array' } } } } }, async () => {
    throw new InvalidInputError('input has 3 values; expected 4');
  });
  app.post('/busy', async () => {
    throw new OverloadedError('queue full', 2);
  });
  app.post('/bug', async () => {
    throw new TypeError('cannot read properties of undefined');
  });
  return app;
}

test('every error the adapter sends has a catalogue code with the catalogue status, as {error, code}', async (t) => {
  const app = server();
  t.teardown(() => app.close());
  const json = { 'content-type': 'application/json' };
  const cases: [name: string, request: InjectOptions, code: string, message: RegExp][] = [
    ['a typed error', { method: 'POST', url: '/typed', headers: json, payload: '{"input":[1,2,3]}' }, 'INVALID_INPUT', /has 3 values/],
    ['schema validation', { method: 'POST', url: '/typed', headers: json, payload: '{"input":5}' }, 'INVALID_REQUEST', /^invalid request: body\/input must be array/],
    ['malformed JSON', { method: 'POST', url: '/typed', headers: json, payload: '{"input": [1,' }, 'INVALID_REQUEST', /JSON/],
    ['empty JSON body', { method: 'POST', url: '/typed', headers: json, payload: '' }, 'INVALID_REQUEST', /body is empty/],
    ['text/plain', { method: 'POST', url: '/typed', headers: { 'content-type': 'text/plain' }, payload: 'x' }, 'UNSUPPORTED_MEDIA_TYPE', /Content-Type: application\/json/],
    ['a body over the limit', { method: 'POST', url: '/typed', headers: json, payload: JSON.stringify({ input: Array(600).fill(1) }) }, 'PAYLOAD_TOO_LARGE', /too large/],
    ['overload', { method: 'POST', url: '/busy', headers: json, payload: '{}' }, 'OVERLOADED', /queue full/],
    ['an unexpected exception', { method: 'POST', url: '/bug', headers: json, payload: '{}' }, 'INTERNAL', /^internal error: cannot read/],
    ['no such route', { method: 'GET', url: '/nowhere?x=1' }, 'NOT_FOUND', /^no route GET \/nowhere$/],
  ];
  for (const [name, request, code, message] of cases) {
    const response = await app.inject(request);
    const body = response.json() as { error: string; code: string };
    t.deepEqual(Object.keys(body).sort(), ['code', 'error'], name);
    t.is(body.code, code, name);
    t.is(response.statusCode, catalogue.get(code) ?? -1, `${name}: status from the catalogue`);
    t.regex(body.error, message, name);
  }
});

test('overload carries Retry-After from the error', async (t) => {
  const app = server();
  t.teardown(() => app.close());
  const response = await app.inject({ method: 'POST', url: '/busy', headers: { 'content-type': 'application/json' }, payload: '{}' });
  t.is(response.statusCode, 503);
  t.is(response.headers['retry-after'], '2');
});

/**
 * The framework's floor: fastify with its default JSON parser and no model, answering OIP infer and Clipper
 * predict with a reply the size of a model's, made from the first input values (so the body is really read).
 * A server built on fastify cannot spend less of its main thread per request than this; bench:http-cost sets
 * clipper-ts beside it. Binary bodies (Inference-Header-Content-Length) are gathered and answered in binary,
 * as the bare server does. Started in a process of its own; reports `{ url }` over IPC once it listens, and
 * stops when the channel closes.
 */
import Fastify from 'fastify';

const app = Fastify({ logger: false, bodyLimit: 8 * 1024 * 1024 });
app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
app.addHook('onRequest', (request, _reply, done) => {
  if (request.headers['inference-header-content-length'] !== undefined) request.raw.headers['content-type'] = 'application/octet-stream';
  done();
});

const firstTen = (data: ArrayLike<number>): number[] => Array.from({ length: 10 }, (_, i) => data[i] ?? 0);

app.post<{ Params: { model: string }; Body: { inputs: { data: number[] }[] } | Buffer }>('/v2/models/:model/infer', async (request, reply) => {
  const body = request.body;
  if (Buffer.isBuffer(body)) {
    const headerLength = Number(request.headers['inference-header-content-length']);
    const header = Buffer.from('{"outputs":[{"name":"probabilities","datatype":"FP32","shape":[1,10],"parameters":{"binary_data_size":40}}]}');
    reply.header('inference-header-content-length', String(header.length)).type('application/octet-stream');
    return Buffer.concat([header, body.subarray(headerLength, headerLength + 40)]);
  }
  const data = body.inputs[0]?.data ?? [];
  return { model_name: request.params.model, outputs: [{ name: 'probabilities', shape: [1, 10], datatype: 'FP32', data: firstTen(data) }] };
});

let queryId = 0;
app.post<{ Body: { input: number[] } }>('/:app/predict', async (request) => {
  const scores = firstTen(request.body.input);
  return { query_id: queryId++, output: scores.indexOf(Math.max(...scores)), default: false };
});

const address = await app.listen({ port: 0, host: '127.0.0.1' });
process.send?.({ url: address });
process.on('disconnect', () => {
  void app.close().then(() => process.exit(0));
});

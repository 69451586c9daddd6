/**
 * The ceiling: a bare node:http server that does what any server must do with a query and nothing else. No
 * framework, no model, no queue: it reads the body and answers with a reply the size of a model's.
 *   - JSON (any path): JSON.parse of the body, then a 10-value JSON answer made from its first values;
 *   - binary (a request with Inference-Header-Content-Length, the OIP binary tensor data extension): the
 *     body's bytes gathered, then a binary answer (a small JSON header and the tensor's first 40 bytes).
 * Started by bench:http in a process of its own; reports `{ url }` over IPC once it listens, and stops when
 * the channel closes.
 */
import { createServer } from 'node:http';
import { serveToParent } from '../lib/server-process.js';

const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
    const headerLength = request.headers['inference-header-content-length'];
    if (headerLength !== undefined) {
      const tensor = body.subarray(Number(headerLength));
      const header = Buffer.from('{"outputs":[{"name":"probabilities","datatype":"FP32","shape":[1,10],"parameters":{"binary_data_size":40}}]}');
      const answer = Buffer.concat([header, tensor.subarray(0, 40)]);
      response.writeHead(200, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length), 'content-length': answer.length });
      response.end(answer);
      return;
    }
    let parsed: { inputs?: { data?: number[] }[]; input?: number[] };
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      response.writeHead(400).end();
      return;
    }
    const data = (parsed.inputs?.[0]?.data ?? parsed.input ?? []).slice(0, 10);
    const answer = JSON.stringify({ outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [1, 10], data }] });
    response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
    response.end(answer);
  });
});
serveToParent(server);

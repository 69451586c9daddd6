/**
 * The floor of bench:overload's measurement: a bare node:http server that parses each query's JSON body, answers
 * one in `--answer-every` (default 3) after a fixed `--delay-ms` (default 12) on a timer, as Clipper's REST API
 * answers (`{"query_id", "output", "default": false}`), and refuses the rest at once with 503. No framework, no
 * model, no queue: the latency the load generator reports above the fixed delay is the generator's and HTTP's
 * on this machine, not the server's. Started in a process of its own; reports `{ url }` over IPC once it
 * listens, and stops when the channel closes.
 */
import { createServer } from 'node:http';
import { serveToParent } from '../lib/server-process.js';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { 'answer-every': { type: 'string', default: '3' }, 'delay-ms': { type: 'string', default: '12' } } });
const answerEvery = Number(values['answer-every']);
const delayMs = Number(values['delay-ms']);
let queries = 0;

const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    if (request.method !== 'POST') {
      response.writeHead(404).end();
      return;
    }
    try {
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      response.writeHead(400).end();
      return;
    }
    const id = ++queries;
    if (id % answerEvery !== 0) {
      response.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' }).end('{"error":"overloaded","code":"OVERLOADED"}');
      return;
    }
    setTimeout(() => {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ query_id: id, output: 7, default: false }));
    }, delayMs);
  });
});
serveToParent(server);

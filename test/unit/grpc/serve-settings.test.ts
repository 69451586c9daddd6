import test from 'ava';
import { resolveServeSettings, serveDefaults } from '../../../src/http/settings.js';

test('the gRPC port: 8001 by default as Triton, from flag or environment, 0 turns it off', (t) => {
  t.is(serveDefaults.grpcPort, 8001);
  t.is(resolveServeSettings([], {}).grpcPort, 8001);
  t.is(resolveServeSettings(['--grpc-port', '9001'], {}).grpcPort, 9001);
  t.is(resolveServeSettings([], { CLIPPER_GRPC_PORT: '9002' }).grpcPort, 9002);
  t.is(resolveServeSettings(['--grpc-port', '0'], {}).grpcPort, 0);
  t.throws(() => resolveServeSettings(['--grpc-port', '70000'], {}), { message: /grpcPort \(from --grpc-port\) must be an integer in \[0, 65535\]/ });
  t.throws(() => resolveServeSettings(['--grpc-port', '1338'], {}), { message: /grpcPort must differ from port and adminPort/ });
});

test('a server on a free query port takes a free gRPC port too, unless one is given', (t) => {
  t.is(resolveServeSettings(['--port', '0'], {}).grpcPort, 'free');
  t.is(resolveServeSettings(['--port', '0', '--grpc-port', '0'], {}).grpcPort, 0);
  t.is(resolveServeSettings(['--port', '0'], { CLIPPER_GRPC_PORT: '9003' }).grpcPort, 9003);
});

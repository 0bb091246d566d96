// Container health probe for both roles of the image (the slim base has no curl). Exit 0 healthy, 1 unhealthy.
//   node deploy/healthcheck.mjs [api|worker]   (default: the role PID 1 was started with)
// api:    GET http://127.0.0.1:$PORT/healthz must answer 200 "ok".
// worker: GET /metrics on WORKER_METRICS_PORT (its own counters) or else TEMPORAL_METRICS_PORT (the SDK's) when
//         set, else a TCP connect to TEMPORAL_ADDRESS (reports a worker cut off from its cluster).
import { readFileSync } from 'node:fs';
import net from 'node:net';

const TIMEOUT_MS = 3000;

function roleOfPid1() {
  try {
    return readFileSync('/proc/1/cmdline', 'utf8').split('\0').includes('worker') ? 'worker' : 'api';
  } catch {
    return 'api';
  }
}

async function httpOk(url, body) {
  const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
  if (body !== undefined && text.trim() !== body) throw new Error(`${url} answered ${JSON.stringify(text)}`);
}

function tcpOk(address) {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i);
  const port = Number(address.slice(i + 1));
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, timeout: TIMEOUT_MS });
    socket.once('connect', () => socket.end(resolve));
    socket.once('timeout', () => socket.destroy(new Error(`${address}: timed out`)));
    socket.once('error', reject);
  });
}

async function check(role) {
  const env = process.env;
  if (role === 'worker') {
    if (env.WORKER_METRICS_PORT) return httpOk(`http://127.0.0.1:${env.WORKER_METRICS_PORT}/metrics`);
    if (env.TEMPORAL_METRICS_PORT) return httpOk(`http://127.0.0.1:${env.TEMPORAL_METRICS_PORT}/metrics`);
    return tcpOk(env.TEMPORAL_ADDRESS || `127.0.0.1:${env.TEMPORAL_DEV_PORT || 7233}`);
  }
  return httpOk(`http://127.0.0.1:${env.PORT || 8080}/healthz`, 'ok');
}

const role = process.argv[2] || roleOfPid1();
check(role).then(
  () => process.exit(0),
  (err) => {
    console.error(`unhealthy (${role}): ${err.message}`);
    process.exit(1);
  },
);

import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { freePort, startDevServer, type DevServer, type DevServerOptions } from '../../temporal/dev-server.js';
import { registerSearchAttributes, setNamespaceRetention } from '../../temporal/namespace.js';
import { GUARD_SEARCH_ATTRIBUTES } from '../../temporal/search-attributes.js';
import { eventually } from '../helpers/eventually.js';

// Values of temporal.api.enums.v1.IndexedValueType, as listSearchAttributes reports them.
const INDEXED = { Keyword: 2, Bool: 5, Datetime: 6, KeywordList: 7, Int: 3 } as const;

let tmpDir: string;
let opts: DevServerOptions;
let server: DevServer | undefined;

beforeAll(async () => {
  tmpDir = mkdtempSync(path.join(os.tmpdir(), 'guard-devserver-'));
  const dbFile = path.join(tmpDir, 'nested', 'dir', 'temporal.db');
  opts = { dbFile, port: await freePort(), namespace: 'guard-it', searchAttributes: GUARD_SEARCH_ATTRIBUTES };
});

afterAll(async () => {
  await server?.stop();
  rmSync(tmpDir, { recursive: true, force: true });
});

async function withConnection<T>(address: string, fn: (c: Connection) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ address });
  try {
    return await fn(connection);
  } finally {
    await connection.close();
  }
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen({ host: '127.0.0.1', port }, () => probe.close(() => resolve(true)));
  });
}

async function retentionSeconds(address: string): Promise<number> {
  const res = await withConnection(address, (c) => c.workflowService.describeNamespace({ namespace: opts.namespace }));
  return Number(res.config?.workflowExecutionRetentionTtl?.seconds);
}

test('the global setup exported its server', () => {
  expect(process.env.TEMPORAL_TEST_ADDRESS).toMatch(/^127\.0\.0\.1:\d+$/);
  expect(process.env.TEMPORAL_TEST_DB).toBeTruthy();
});

test('starts headless with the namespace and search attributes registered', async () => {
  server = await startDevServer(opts);
  expect(server.address).toBe(`127.0.0.1:${opts.port}`);
  expect(server.uiUrl).toBeUndefined();
  const res = await withConnection(server.address, (c) =>
    c.operatorService.listSearchAttributes({ namespace: opts.namespace }),
  );
  const custom = Object.fromEntries(Object.entries(res.customAttributes ?? {}).map(([k, v]) => [k, Number(v)]));
  for (const [name, type] of Object.entries(GUARD_SEARCH_ATTRIBUTES)) expect(custom[name]).toBe(INDEXED[type]);
});

test('refuses a second server on the same port and db, naming the port and the stale process', async () => {
  const running = server!;
  await expect(startDevServer(opts)).rejects.toThrow(
    new RegExp(`Port ${opts.port} .*already in use.*pid ${running.pid}.*same db file`),
  );
});

test('refuses a port held by something else, naming the port', async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const { port } = blocker.address() as net.AddressInfo;
  try {
    const other = { ...opts, port, dbFile: path.join(tmpDir, 'other.db') };
    await expect(startDevServer(other)).rejects.toThrow(`Port ${port} (Temporal dev server gRPC) is already in use`);
  } finally {
    blocker.close();
  }
});

test('registerSearchAttributes adds missing ones once and is idempotent', async () => {
  const attrs = { ...GUARD_SEARCH_ATTRIBUTES, GuardItExtra: 'Int' } as const;
  expect(await registerSearchAttributes(server!.address, opts.namespace, attrs)).toEqual(['GuardItExtra']);
  expect(await registerSearchAttributes(server!.address, opts.namespace, attrs)).toEqual([]);
  await expect(registerSearchAttributes(server!.address, opts.namespace, { GuardItExtra: 'Keyword' })).rejects.toThrow(
    /GuardItExtra exists with type/,
  );
});

test('setNamespaceRetention clamps to one hour and applies the value', async () => {
  const applied = await withConnection(server!.address, (c) => setNamespaceRetention(c, opts.namespace, 60));
  expect(applied).toBe(3600);
  const twoDays = await withConnection(server!.address, (c) => setNamespaceRetention(c, opts.namespace, 172_800));
  expect(twoDays).toBe(172_800);
  expect(await retentionSeconds(server!.address)).toBe(172_800);
});

test('stop frees the port and a restart on the same db keeps the namespace settings', async () => {
  await server!.stop();
  await server!.stop(); // idempotent
  expect(await portIsFree(opts.port)).toBe(true);
  server = await startDevServer(opts);
  expect(await retentionSeconds(server.address)).toBe(172_800);
  const res = await withConnection(server.address, (c) =>
    c.operatorService.listSearchAttributes({ namespace: opts.namespace }),
  );
  expect(Number(res.customAttributes?.GuardItExtra)).toBe(INDEXED.Int);
});

describe('supervised (npm start)', () => {
  test('a server that dies is restarted on its port and database file; after stop() it is not', async () => {
    const logs: string[] = [];
    const downs: string[] = [];
    let ups = 0;
    const dbFile = path.join(tmpDir, 'supervised.db');
    const supervised = await startDevServer({
      ...opts,
      dbFile,
      port: await freePort(),
      supervise: { log: (m) => logs.push(m), onDown: (r) => downs.push(r), onUp: () => (ups += 1) },
    });
    try {
      await withConnection(supervised.address, (c) => setNamespaceRetention(c, opts.namespace, 7200));
      const first = supervised.pid;
      process.kill(first, 'SIGKILL');
      await eventually(() => (ups === 1 ? true : undefined), { timeoutMs: 60_000, what: 'the restart' });
      expect(downs).toEqual([`Temporal dev server (pid ${first}) exited: killed by SIGKILL`]);
      expect(logs[0]).toContain(`restarting it on port ${supervised.address.split(':')[1]} with ${dbFile}`);
      expect(logs.at(-1)).toMatch(/^Temporal dev server restarted \(pid \d+\)/);
      expect(supervised.pid).not.toBe(first);
      expect(await retentionSeconds(supervised.address)).toBe(7200);
    } finally {
      await supervised.stop();
    }
    const port = Number(supervised.address.split(':')[1]);
    expect(await portIsFree(port)).toBe(true);
    // The exit seen after stop() would have logged a restart before stop() resolved: there was none.
    expect(logs.filter((l) => l.includes('restarting'))).toHaveLength(1);
    expect(downs).toHaveLength(1);
  }, 120_000);
});

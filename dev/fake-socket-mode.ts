/**
 * The Socket Mode side of the fake Slack (https://api.slack.com/apis/socket-mode): the WebSocket an app opens with
 * the URL `apps.connections.open` gave it. As Slack does, it greets with `hello`, sends each interaction as an
 * envelope (`{envelope_id, type: 'interactive', payload, accepts_response_payload}`), waits for the ack carrying the
 * same `envelope_id` (Slack gives up after 3 s and shows the clicker an error), pings every few seconds, and asks
 * clients to reconnect with `disconnect` (reason `refresh_requested`, `warning`, `link_disabled`). Tests can also cut
 * a connection without a close frame, as a network drop does.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';

export const ACK_TIMEOUT_MS = 3000;
const PING_INTERVAL_MS = 5000;

export interface SocketAck {
  envelopeId: string;
  /** What the app acked with (`payload`: a modal's `response_action`, for instance). */
  payload: Record<string, unknown>;
  /** Milliseconds from sending the envelope to its ack. */
  ackMs: number;
}

export interface SocketEnvelope {
  envelopeId: string;
  type: string;
  payload: unknown;
  sentAt: number;
  ack?: SocketAck;
}

export type DisconnectReason = 'refresh_requested' | 'warning' | 'link_disabled';

export interface FakeSocketMode {
  /** Connections that got their `hello` and are still open. */
  readonly openConnections: number;
  /** Connections opened in all, reconnections included. */
  readonly connectionsOpened: number;
  readonly envelopes: SocketEnvelope[];
  /** Resolves once `count` connections are open. */
  waitForConnections(count?: number, timeoutMs?: number): Promise<void>;
  /** Delivers an interaction payload over an open connection; resolves with the ack, rejects without one in 3 s. */
  sendInteractive(payload: object, opts?: { envelopeId?: string }): Promise<SocketAck>;
  /** Slack asks every connection to reconnect, then closes it (as Slack does once the client has moved). */
  disconnect(reason: DisconnectReason): void;
  /** Every connection dies without a close frame. */
  drop(): void;
}

interface Waiting {
  resolve: (ack: SocketAck) => void;
  timer: NodeJS.Timeout;
  envelope: SocketEnvelope;
}

export class FakeSocketModeServer implements FakeSocketMode {
  readonly envelopes: SocketEnvelope[] = [];
  connectionsOpened = 0;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly open = new Set<WebSocket>();
  private readonly waiting = new Map<string, Waiting>();
  private readonly pinger: NodeJS.Timeout;

  /** `takeTicket`: true once for each ticket apps.connections.open handed out. */
  constructor(
    server: Server,
    private readonly takeTicket: (ticket: string) => boolean,
    private readonly appId: string,
  ) {
    server.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head));
    this.pinger = setInterval(() => this.open.forEach((ws) => ws.ping()), PING_INTERVAL_MS);
    this.pinger.unref();
  }

  get openConnections(): number {
    return this.open.size;
  }

  async waitForConnections(count = 1, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.open.size < count) {
      if (Date.now() > deadline) throw new Error(`fake-slack: ${this.open.size} of ${count} Socket Mode connections`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  sendInteractive(payload: object, opts: { envelopeId?: string } = {}): Promise<SocketAck> {
    const ws = [...this.open][this.envelopes.length % Math.max(1, this.open.size)];
    if (!ws) return Promise.reject(new Error('fake-slack: no open Socket Mode connection'));
    const envelope: SocketEnvelope = {
      envelopeId: opts.envelopeId ?? randomBytes(16).toString('hex'),
      type: 'interactive',
      payload,
      sentAt: Date.now(),
    };
    this.envelopes.push(envelope);
    const { envelopeId, type } = envelope;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(envelopeId);
        reject(new Error(`fake-slack: envelope ${envelopeId} not acked within ${ACK_TIMEOUT_MS} ms`));
      }, ACK_TIMEOUT_MS);
      this.waiting.set(envelopeId, { resolve, timer, envelope });
      ws.send(JSON.stringify({ envelope_id: envelopeId, type, payload, accepts_response_payload: true }));
    });
  }

  disconnect(reason: DisconnectReason): void {
    for (const ws of this.open) {
      ws.send(JSON.stringify({ type: 'disconnect', reason, debug_info: { host: 'applink-fake' } }));
      // Slack closes the old connection soon after; a client that reconnects at once never notices.
      setTimeout(() => ws.close(1000), 200).unref();
    }
  }

  drop(): void {
    for (const ws of this.open) ws.terminate();
  }

  close(): void {
    clearInterval(this.pinger);
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const ticket = url.searchParams.get('ticket') ?? '';
    if (url.pathname !== '/link/' || !this.takeTicket(ticket)) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws));
  }

  private accept(ws: WebSocket): void {
    this.connectionsOpened += 1;
    this.open.add(ws);
    ws.on('close', () => this.open.delete(ws));
    ws.on('error', () => this.open.delete(ws));
    ws.on('message', (data) => this.onAck(String(data)));
    ws.send(
      JSON.stringify({
        type: 'hello',
        num_connections: this.open.size,
        debug_info: { host: 'applink-fake', build_number: 1, approximate_connection_time: 18060 },
        connection_info: { app_id: this.appId },
      }),
    );
  }

  private onAck(text: string): void {
    let message: { envelope_id?: unknown; payload?: unknown };
    try {
      message = JSON.parse(text) as typeof message;
    } catch {
      return;
    }
    const waiting = typeof message.envelope_id === 'string' ? this.waiting.get(message.envelope_id) : undefined;
    if (!waiting) return;
    clearTimeout(waiting.timer);
    this.waiting.delete(waiting.envelope.envelopeId);
    const payload = (message.payload && typeof message.payload === 'object' ? message.payload : {}) as Record<
      string,
      unknown
    >;
    const ack = { envelopeId: waiting.envelope.envelopeId, payload, ackMs: Date.now() - waiting.envelope.sentAt };
    waiting.envelope.ack = ack;
    waiting.resolve(ack);
  }
}

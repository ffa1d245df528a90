import { Message, Presence, StatusFrame, TypingFrame } from './models';

/** What the client needs of a WebSocket (the browser's, or a fake in tests). */
export interface SocketLike {
  onmessage: ((event: MessageEvent) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
  onerror: ((event: Event) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type ConnectionState = 'connecting' | 'online' | 'offline';

export interface StreamHandlers {
  message(message: Message): void;
  status(change: StatusFrame): void;
  typing(typing: TypingFrame): void;
  presence(presence: Presence): void;
  connection(state: ConnectionState): void;
}

export interface StreamOptions {
  /** The stream's URL with this access token; `refresh` after the server refused the last one. */
  url(refresh: boolean): Promise<string>;
  socket(url: string): SocketLike;
  /** Runs `task` after `ms`; returns a canceller. Injected so tests control time. */
  schedule(task: () => void, ms: number): () => void;
  random(): number;
  /** This user's id: their own messages are not acknowledged. */
  userId(): string;
  handlers: StreamHandlers;
}

export const CLOSE_UNAUTHENTICATED = 4401;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 30_000;

/**
 * The real-time stream (`/v1/stream`): reconnects with exponential backoff and jitter, and
 * resumes from the last sequence number seen per conversation, so a reconnect misses nothing.
 *
 * Messages reach the handler once each and in order per conversation: one at or below the
 * last seen number is a duplicate (delivery is at-least-once) and is dropped; one past a gap is
 * held until the gap is filled (the server's catch-up can start after a watermark another device
 * moved, while the `resume` sent on `ready` replays from where this client is).
 */
export class StreamClient {
  private socket: SocketLike | null = null;
  private running = false;
  private attempt = 0;
  private refreshToken = false;
  private cancelRetry: (() => void) | null = null;
  private readonly lastSeen = new Map<string, number>();
  private readonly held = new Map<string, Map<number, Message>>();

  constructor(private readonly options: StreamOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.connect();
  }

  stop(): void {
    this.running = false;
    this.cancelRetry?.();
    this.cancelRetry = null;
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000, 'signed out');
    this.lastSeen.clear(); // the next start may be another user's
    this.held.clear();
  }

  /** The last sequence number this client has of a conversation (e.g. from the history). */
  markSeen(conversationId: string, sequenceNumber: number): void {
    const last = this.lastSeen.get(conversationId) ?? 0;
    if (sequenceNumber > last) this.lastSeen.set(conversationId, sequenceNumber);
    this.release(conversationId);
  }

  seen(conversationId: string): number | undefined {
    return this.lastSeen.get(conversationId);
  }

  /** Whether a frame could be sent now; frames are never queued (typing is momentary). */
  sendTyping(conversationId: string): boolean {
    return this.send('typing', { conversation_id: conversationId });
  }

  private async connect(): Promise<void> {
    if (!this.running) return;
    this.options.handlers.connection('connecting');
    let url: string;
    try {
      url = await this.options.url(this.refreshToken);
    } catch {
      this.retry(); // offline, or the token could not be refreshed yet
      return;
    }
    if (!this.running) return;
    const socket = this.options.socket(url);
    this.socket = socket;
    socket.onmessage = (event) => {
      if (this.socket === socket) this.onFrame(String(event.data));
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.refreshToken = event.code === CLOSE_UNAUTHENTICATED;
      this.options.handlers.connection('offline');
      this.retry();
    };
    socket.onerror = () => undefined; // onclose follows and does the work
  }

  private retry(): void {
    if (!this.running) return;
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    this.attempt += 1;
    const delay = ceiling / 2 + (this.options.random() * ceiling) / 2;
    this.cancelRetry = this.options.schedule(() => {
      this.cancelRetry = null;
      void this.connect();
    }, delay);
  }

  private onFrame(raw: string): void {
    let frame: { type?: string; data?: unknown };
    try {
      frame = JSON.parse(raw);
    } catch {
      return;
    }
    const handlers = this.options.handlers;
    switch (frame.type) {
      case 'ready':
        this.attempt = 0;
        this.refreshToken = false;
        handlers.connection('online');
        if (this.lastSeen.size > 0) {
          this.send('resume', { after: Object.fromEntries(this.lastSeen) });
        }
        break;
      case 'message.new':
        this.accept(frame.data as Message);
        break;
      case 'resumed':
        // Whatever is still held lies past a gap the server could not fill: show it anyway.
        for (const conversationId of this.held.keys()) this.release(conversationId, true);
        break;
      case 'message.status':
        handlers.status(frame.data as StatusFrame);
        break;
      case 'typing':
        handlers.typing(frame.data as TypingFrame);
        break;
      case 'presence':
        handlers.presence(frame.data as Presence);
        break;
    }
  }

  private accept(message: Message): void {
    const cid = message.conversation_id;
    const seq = message.sequence_number;
    const last = this.lastSeen.get(cid);
    if (last !== undefined && seq <= last) {
      this.ack(message); // a replay: the earlier ack may have been lost with the connection
      return;
    }
    if (last !== undefined && seq > last + 1) {
      if (!this.held.has(cid)) this.held.set(cid, new Map());
      this.held.get(cid)!.set(seq, message);
      return;
    }
    this.deliver(message);
    this.release(cid);
  }

  /** Delivers held messages that now follow on; with `all`, the rest too, in order. */
  private release(cid: string, all = false): void {
    const waiting = this.held.get(cid);
    if (!waiting) return;
    for (const seq of [...waiting.keys()].sort((a, b) => a - b)) {
      const last = this.lastSeen.get(cid) ?? 0;
      if (seq <= last) {
        waiting.delete(seq);
      } else if (seq === last + 1 || all) {
        this.deliver(waiting.get(seq)!);
        waiting.delete(seq);
      } else {
        break;
      }
    }
    if (waiting.size === 0) this.held.delete(cid);
  }

  private deliver(message: Message): void {
    this.lastSeen.set(message.conversation_id, message.sequence_number);
    this.options.handlers.message(message);
    this.ack(message);
  }

  private ack(message: Message): void {
    if (message.from_user_id !== this.options.userId()) {
      this.send('ack', { message_id: message.message_id });
    }
  }

  private send(type: string, data: unknown): boolean {
    if (!this.socket) return false;
    try {
      this.socket.send(JSON.stringify({ type, data }));
      return true;
    } catch {
      return false; // closing: onclose reconnects
    }
  }
}

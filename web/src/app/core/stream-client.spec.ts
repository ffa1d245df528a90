import { Message } from './models';
import { CLOSE_UNAUTHENTICATED, ConnectionState, SocketLike, StreamClient } from './stream-client';

const ME = 'me';

/** A WebSocket the test drives: what the client sent, and server frames pushed in. */
class FakeSocket implements SocketLike {
  onmessage: ((event: MessageEvent) => void) | null = null;
  onclose: ((event: CloseEvent) => void) | null = null;
  onerror: ((event: Event) => void) | null = null;
  readonly sent: { type: string; data: any }[] = [];
  closed = false;

  constructor(readonly url: string) {}

  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }
  close(): void {
    this.closed = true;
  }
  push(type: string, data: unknown): void {
    this.onmessage?.({ data: JSON.stringify({ type, data }) } as MessageEvent);
  }
  drop(code = 1006): void {
    this.onclose?.({ code, reason: '' } as CloseEvent);
  }
  acks(): string[] {
    return this.sent.filter((f) => f.type === 'ack').map((f) => f.data.message_id);
  }
}

function message(cid: string, seq: number, from = 'bob'): Message {
  return {
    message_id: `${cid}-${seq}`,
    conversation_id: cid,
    sequence_number: seq,
    from_user_id: from,
    payload: { type: 'text', text: `#${seq}` },
    created_at: '2026-01-01T00:00:00Z',
  };
}

function setUp() {
  const sockets: FakeSocket[] = [];
  const timers: { task: () => void; ms: number }[] = [];
  const received: Message[] = [];
  const states: ConnectionState[] = [];
  const refreshes: boolean[] = [];
  const client = new StreamClient({
    url: async (refresh) => {
      refreshes.push(refresh);
      return 'ws://test/v1/stream';
    },
    socket: (url) => {
      const socket = new FakeSocket(url);
      sockets.push(socket);
      return socket;
    },
    schedule: (task, ms) => {
      const timer = { task, ms };
      timers.push(timer);
      return () => timers.splice(timers.indexOf(timer), 1);
    },
    random: () => 1, // the top of each backoff range
    userId: () => ME,
    handlers: {
      message: (m) => received.push(m),
      status: () => undefined,
      typing: () => undefined,
      presence: () => undefined,
      connection: (s) => states.push(s),
    },
  });
  const settle = () => new Promise((resolve) => setTimeout(resolve, 0));
  /** Runs the pending reconnect timer and lets the connection open. */
  const fireTimer = async () => {
    timers.shift()!.task();
    await settle();
  };
  return { client, sockets, timers, received, states, refreshes, settle, fireTimer };
}

async function connected() {
  const t = setUp();
  t.client.start();
  await t.settle();
  t.sockets[0].push('ready', { user_id: ME, session_id: 's1' });
  return t;
}

const seqs = (messages: Message[]) =>
  messages.map((m) => `${m.conversation_id}:${m.sequence_number}`);

describe('StreamClient', () => {
  it('goes online on ready and sends no resume before anything was seen', async () => {
    const { sockets, states } = await connected();
    expect(states).toEqual(['connecting', 'online']);
    expect(sockets[0].sent).toEqual([]);
  });

  it('delivers messages in order and acks those of others, not my own', async () => {
    const { sockets, received } = await connected();
    sockets[0].push('message.new', message('c', 1));
    sockets[0].push('message.new', message('c', 2, ME));
    expect(seqs(received)).toEqual(['c:1', 'c:2']);
    expect(sockets[0].acks()).toEqual(['c-1']);
  });

  it('drops a duplicate but acks it again, since the first ack may have been lost', async () => {
    const { sockets, received } = await connected();
    sockets[0].push('message.new', message('c', 1));
    sockets[0].push('message.new', message('c', 1));
    expect(seqs(received)).toEqual(['c:1']);
    expect(sockets[0].acks()).toEqual(['c-1', 'c-1']);
  });

  it('holds a message past a gap until the gap is filled, then delivers in order', async () => {
    const { sockets, received } = await connected();
    sockets[0].push('message.new', message('c', 1));
    sockets[0].push('message.new', message('c', 4));
    sockets[0].push('message.new', message('c', 3));
    expect(seqs(received)).toEqual(['c:1']);
    sockets[0].push('message.new', message('c', 2));
    expect(seqs(received)).toEqual(['c:1', 'c:2', 'c:3', 'c:4']);
    expect(sockets[0].acks()).toEqual(['c-1', 'c-2', 'c-3', 'c-4']);
  });

  it('reconnects with growing, capped backoff, reset once connected again', async () => {
    const { sockets, timers, fireTimer, states } = await connected();
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      sockets.at(-1)!.drop();
      delays.push(timers[0].ms);
      await fireTimer();
    }
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    expect(states.filter((s) => s === 'offline')).toHaveLength(8);
    sockets.at(-1)!.push('ready', {});
    sockets.at(-1)!.drop();
    expect(timers[0].ms).toBe(500);
  });

  it('resumes from the last seen numbers: the missed ones arrive once each, in order', async () => {
    const { sockets, received, fireTimer } = await connected();
    sockets[0].push('message.new', message('a', 1));
    sockets[0].push('message.new', message('a', 2));
    sockets[0].push('message.new', message('b', 7));
    sockets[0].drop();
    await fireTimer();
    const second = sockets[1];
    // The server's catch-up starts at a watermark another device moved (a:4), before resume.
    second.push('ready', {});
    expect(second.sent[0]).toEqual({ type: 'resume', data: { after: { a: 2, b: 7 } } });
    second.push('message.new', message('a', 5));
    second.push('message.new', message('a', 3)); // the resume's replay
    second.push('message.new', message('a', 4));
    second.push('message.new', message('a', 5));
    second.push('resumed', { a: 5, b: 7 });
    expect(seqs(received)).toEqual(['a:1', 'a:2', 'b:7', 'a:3', 'a:4', 'a:5']);
  });

  it('shows what lies past a gap the resume could not fill', async () => {
    const { sockets, received } = await connected();
    sockets[0].push('message.new', message('c', 1));
    sockets[0].push('message.new', message('c', 3));
    sockets[0].push('resumed', { c: 3 });
    expect(seqs(received)).toEqual(['c:1', 'c:3']);
  });

  it('resumes a conversation from the history it loaded', async () => {
    const { client, sockets, received, fireTimer } = await connected();
    client.markSeen('c', 10);
    sockets[0].push('message.new', message('c', 9)); // older than the history: a duplicate
    sockets[0].drop();
    await fireTimer();
    sockets[1].push('ready', {});
    expect(sockets[1].sent[0].data.after).toEqual({ c: 10 });
    expect(received).toEqual([]);
  });

  it('asks for a fresh token after the server refused the last one', async () => {
    const { sockets, refreshes, fireTimer } = await connected();
    sockets[0].drop(CLOSE_UNAUTHENTICATED);
    await fireTimer();
    sockets[1].drop(1006);
    await fireTimer();
    expect(refreshes).toEqual([false, true, false]);
  });

  it('stays closed after stop, and forgets what it saw (the next user is another)', async () => {
    const { client, sockets, timers, settle } = await connected();
    sockets[0].push('message.new', message('c', 1));
    client.stop();
    expect(sockets[0].closed).toBe(true);
    sockets[0].drop();
    expect(timers).toEqual([]);
    client.start();
    await settle();
    sockets[1].push('ready', {});
    expect(sockets[1].sent).toEqual([]);
  });

  it('sends typing only while connected', async () => {
    const t = setUp();
    expect(t.client.sendTyping('c')).toBe(false);
    t.client.start();
    await t.settle();
    expect(t.client.sendTyping('c')).toBe(true);
    expect(t.sockets[0].sent).toEqual([{ type: 'typing', data: { conversation_id: 'c' } }]);
  });
});

import { Outbox, Outgoing, SendOutcome } from './outbox';

class MemoryStore {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
}

function outgoing(id: string, text = id): Outgoing {
  return {
    message_id: id,
    conversation_id: 'c',
    payload: { type: 'text', text },
    queued_at: '2026-01-01T00:00:00Z',
  };
}

const KEY = 'outbox.me';

describe('Outbox', () => {
  it('keeps messages across a reload, with the id they were typed with', () => {
    const store = new MemoryStore();
    new Outbox(store, KEY).add(outgoing('m1'));
    expect(new Outbox(store, KEY).pending()).toEqual([outgoing('m1')]);
  });

  it('keeps each user’s messages apart', () => {
    const store = new MemoryStore();
    new Outbox(store, 'outbox.alice').add(outgoing('m1'));
    expect(new Outbox(store, 'outbox.bob').pending()).toEqual([]);
  });

  it('sends in the order typed and forgets what was sent', async () => {
    const outbox = new Outbox(new MemoryStore(), KEY);
    ['m1', 'm2', 'm3'].forEach((id) => outbox.add(outgoing(id)));
    const sent: string[] = [];
    await outbox.flush(async (m) => {
      sent.push(m.message_id);
      return 'sent';
    });
    expect(sent).toEqual(['m1', 'm2', 'm3']);
    expect(outbox.pending()).toEqual([]);
  });

  it('stops at the first that must wait, and retries it with the same id later', async () => {
    const outbox = new Outbox(new MemoryStore(), KEY);
    ['m1', 'm2', 'm3'].forEach((id) => outbox.add(outgoing(id)));
    const attempts: string[] = [];
    let online = false;
    const send = async (m: Outgoing): Promise<SendOutcome> => {
      attempts.push(m.message_id);
      return m.message_id === 'm1' || online ? 'sent' : 'retry';
    };
    await outbox.flush(send);
    expect(outbox.pending().map((m) => m.message_id)).toEqual(['m2', 'm3']);
    online = true;
    await outbox.flush(send);
    expect(attempts).toEqual(['m1', 'm2', 'm2', 'm3']);
    expect(outbox.pending()).toEqual([]);
  });

  it('drops a message the server refused for good, and goes on', async () => {
    const outbox = new Outbox(new MemoryStore(), KEY);
    ['bad', 'm2'].forEach((id) => outbox.add(outgoing(id)));
    const sent: string[] = [];
    await outbox.flush(async (m) => {
      sent.push(m.message_id);
      return m.message_id === 'bad' ? 'refused' : 'sent';
    });
    expect(sent).toEqual(['bad', 'm2']);
    expect(outbox.pending()).toEqual([]);
  });

  it('sends each message once when flushes overlap, including ones added meanwhile', async () => {
    const outbox = new Outbox(new MemoryStore(), KEY);
    outbox.add(outgoing('m1'));
    const sent: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const send = async (m: Outgoing): Promise<SendOutcome> => {
      sent.push(m.message_id);
      await gate;
      return 'sent';
    };
    const first = outbox.flush(send);
    const second = outbox.flush(send);
    outbox.add(outgoing('m2'));
    release();
    await Promise.all([first, second]);
    expect(sent).toEqual(['m1', 'm2']);
  });

  it('tells who listens what is pending after each change', () => {
    const seen: number[] = [];
    const outbox = new Outbox(new MemoryStore(), KEY, (pending) => seen.push(pending.length));
    outbox.add(outgoing('m1'));
    outbox.add(outgoing('m1', 'the same id again replaces it'));
    outbox.remove('m1');
    expect(seen).toEqual([1, 1, 0]);
  });
});

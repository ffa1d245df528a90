import { Payload } from './models';

/** A message typed but not yet accepted by the server. */
export interface Outgoing {
  /** Fixed when the message is typed: every retry sends the same id, so none duplicates. */
  message_id: string;
  conversation_id: string;
  payload: Payload;
  queued_at: string;
}

/** How one send went: accepted, worth retrying later, or refused for good. */
export type SendOutcome = 'sent' | 'retry' | 'refused';

/** What the outbox needs of `localStorage`. */
export type KeyValueStore = Pick<Storage, 'getItem' | 'setItem'>;

/**
 * Messages waiting to be sent, kept in localStorage so that a closed tab or a lost connection
 * loses nothing. `flush` sends them in the order typed and stops at the first one that must
 * wait, so a conversation's messages keep their order; the server de-duplicates on
 * `message_id`, so a send that succeeded without its answer arriving is harmless to repeat.
 */
export class Outbox {
  private flushing: Promise<void> | null = null;

  /** `key`: where in the store; one per user, so nobody sends what another typed. */
  constructor(
    private readonly store: KeyValueStore,
    private readonly key: string,
    private readonly onChange: (pending: Outgoing[]) => void = () => undefined,
  ) {}

  pending(): Outgoing[] {
    const raw = this.store.getItem(this.key);
    return raw ? (JSON.parse(raw) as Outgoing[]) : [];
  }

  add(message: Outgoing): void {
    this.write([...this.pending().filter((m) => m.message_id !== message.message_id), message]);
  }

  remove(messageId: string): void {
    this.write(this.pending().filter((m) => m.message_id !== messageId));
  }

  /** Sends what is pending, one at a time; a second call while one runs joins it. */
  flush(send: (message: Outgoing) => Promise<SendOutcome>): Promise<void> {
    this.flushing ??= this.drain(send).finally(() => (this.flushing = null));
    return this.flushing;
  }

  private async drain(send: (message: Outgoing) => Promise<SendOutcome>): Promise<void> {
    for (;;) {
      const next = this.pending()[0];
      if (!next) return;
      const outcome = await send(next);
      if (outcome === 'retry') return;
      this.remove(next.message_id); // sent, or refused (the caller shows why)
    }
  }

  private write(pending: Outgoing[]): void {
    this.store.setItem(this.key, JSON.stringify(pending));
    this.onChange(pending);
  }
}

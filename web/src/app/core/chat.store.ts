import { Injectable, Signal, WritableSignal, computed, inject, signal } from '@angular/core';

import { ApiService } from './api.service';
import { AuthService } from './auth.service';
import { uuid4 } from './ids';
import {
  Conversation,
  DeliveryStatus,
  Member,
  Message,
  Page,
  Payload,
  Presence,
  StatusFrame,
  TypingFrame,
  UserRef,
} from './models';
import { Outbox, Outgoing, SendOutcome } from './outbox';
import { ApiError } from './problem';
import { later, receiptsOf } from './receipts';
import { ConnectionState, StreamClient } from './stream-client';

export interface ChatMessage extends Message {
  receipts: Record<string, DeliveryStatus>;
}

const PAGE = 50;
const TYPING_EVERY_MS = 3000;
const PRESENCE_EVERY_MS = 10_000;
const RETRY_MS = 5000;
const READ_BATCH_MS = 250;

/**
 * The client's state, as signals: conversations, their messages, receipts, typing, presence.
 * Fed by the REST API (lists, history) and the stream (live messages and statuses); messages
 * leave through the outbox, so one typed offline is sent when the connection returns.
 */
@Injectable({ providedIn: 'root' })
export class ChatStore {
  private readonly api = inject(ApiService);
  private readonly auth = inject(AuthService);

  readonly connection = signal<ConnectionState>('offline');
  readonly names = signal<Record<string, string>>({});
  readonly presence = signal<Record<string, Presence>>({});
  /** conversation -> user -> typing until (epoch ms) */
  readonly typing = signal<Record<string, Record<string, number>>>({});
  readonly now = signal(Date.now());
  readonly outgoing = signal<Outgoing[]>([]);
  /** message_id -> why the server refused it */
  readonly refused = signal<Record<string, string>>({});
  readonly error = signal<string | null>(null);

  private readonly conversationMap = signal<Record<string, Conversation>>({});
  readonly conversations = computed(() =>
    Object.values(this.conversationMap()).sort((a, b) => activity(b).localeCompare(activity(a))),
  );
  private readonly histories = new Map<string, WritableSignal<ChatMessage[]>>();
  private readonly older = signal<Record<string, boolean>>({});
  private readonly loaded = new Set<string>();
  private readonly nameRequested = new Set<string>();
  /** conversation -> the read mark to tell the server at the next batch */
  private readonly readsDue = new Map<string, number>();
  private outbox = this.outboxOf('');
  private readonly stream = new StreamClient({
    url: async (refresh) => {
      const token = refresh ? await this.auth.refresh(true) : await this.auth.accessToken();
      const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
      return `${scheme}://${location.host}/v1/stream?access_token=${encodeURIComponent(token)}`;
    },
    socket: (url) => new WebSocket(url),
    schedule: (task, ms) => {
      const timer = setTimeout(task, ms);
      return () => clearTimeout(timer);
    },
    random: Math.random,
    userId: () => this.auth.user()?.user_id ?? '',
    handlers: {
      message: (m) => this.onMessage(m),
      status: (s) => this.onStatus(s),
      typing: (t) => this.onTyping(t),
      presence: (p) => this.presence.update((all) => ({ ...all, [p.user_id]: p })),
      connection: (state) => this.onConnection(state),
    },
  });
  private ticker: ReturnType<typeof setInterval> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private lastTyping = 0;
  private readonly onOnline = () => this.flush();

  /** Starts the stream and sends what waits in the outbox; called once signed in. */
  start(): void {
    this.outbox = this.outboxOf(this.me());
    this.outgoing.set(this.outbox.pending());
    this.stream.start();
    this.ticker = setInterval(() => this.now.set(Date.now()), 1000);
    addEventListener('online', this.onOnline);
    void this.loadConversations();
  }

  stop(): void {
    this.stream.stop();
    clearInterval(this.ticker);
    clearTimeout(this.retryTimer);
    removeEventListener('online', this.onOnline);
    this.conversationMap.set({});
    this.histories.clear();
    this.loaded.clear();
  }

  private outboxOf(userId: string): Outbox {
    return new Outbox(localStorage, `chat4all.outbox.${userId}`, (p) => this.outgoing.set(p));
  }

  me(): string {
    return this.auth.user()?.user_id ?? '';
  }

  conversation(id: string): Conversation | undefined {
    return this.conversationMap()[id];
  }

  messages(conversationId: string): Signal<ChatMessage[]> {
    return this.history(conversationId).asReadonly();
  }

  hasOlder(conversationId: string): boolean {
    return this.older()[conversationId] ?? false;
  }

  title(conversation: Conversation): string {
    const name = conversation.metadata['name'];
    if (conversation.type === 'group') return typeof name === 'string' && name ? name : 'Group';
    const other = conversation.members.find((m) => m.user_id !== this.me());
    return other ? this.nameOf(other.user_id) : 'Just me';
  }

  /** A user's name, fetched once and remembered; the id's start until it arrives. */
  nameOf(userId: string): string {
    const known = this.names()[userId];
    if (known !== undefined) return known;
    if (!this.nameRequested.has(userId)) {
      // Called while rendering, where signals must not be written: the answer comes later.
      this.nameRequested.add(userId);
      this.api
        .get<UserRef>(`/v1/users/${userId}`)
        .then((u) => this.names.update((all) => ({ ...all, [userId]: u.username })))
        .catch(() => this.nameRequested.delete(userId));
    }
    return userId.slice(0, 8);
  }

  async loadConversations(): Promise<void> {
    try {
      const page = await this.api.get<Page<Conversation>>('/v1/conversations?limit=100');
      const known = this.conversationMap();
      // The list names only me among the members: keep the full lists fetched before.
      const items = page.items.map((c) => {
        const members = known[c.conversation_id]?.members ?? c.members;
        return { ...c, members: members.length > c.members.length ? members : c.members };
      });
      this.conversationMap.set(Object.fromEntries(items.map((c) => [c.conversation_id, c])));
      // A private conversation's title is the other member's name: fetch who that is.
      for (const c of items) {
        if (c.type === 'private' && c.members.length < 2) {
          this.api
            .get<Conversation>(`/v1/conversations/${c.conversation_id}`)
            .then((full) => this.patch(c.conversation_id, { members: full.members }))
            .catch(() => undefined);
        }
      }
    } catch (e) {
      this.report(e);
    }
  }

  /** The conversation with its members, and its newest messages. */
  async open(conversationId: string): Promise<void> {
    const conversation = await this.api.get<Conversation>(`/v1/conversations/${conversationId}`);
    this.upsert(conversation);
    if (this.loaded.has(conversationId)) return;
    const page = await this.api.get<Page<Message>>(
      `/v1/conversations/${conversationId}/messages?limit=${PAGE}`,
    );
    this.merge(conversationId, page.items);
    this.loaded.add(conversationId);
    this.older.update((all) => ({ ...all, [conversationId]: page.next_cursor !== null }));
    const last = page.items.at(-1);
    if (last) this.stream.markSeen(conversationId, last.sequence_number);
  }

  /** The page before the oldest message shown (infinite scroll back). */
  async loadOlder(conversationId: string): Promise<void> {
    const first = this.history(conversationId)()[0];
    if (!first || !this.hasOlder(conversationId)) return;
    const page = await this.api.get<Page<Message>>(
      `/v1/conversations/${conversationId}/messages?limit=${PAGE}&before_seq=${first.sequence_number}`,
    );
    this.merge(conversationId, page.items);
    this.older.update((all) => ({ ...all, [conversationId]: page.next_cursor !== null }));
  }

  /** Queues a message (its id fixed now) and sends it when the connection allows. */
  send(conversationId: string, payload: Payload): string {
    const message_id = uuid4();
    this.outbox.add({
      message_id,
      conversation_id: conversationId,
      payload,
      queued_at: new Date().toISOString(),
    });
    void this.flush();
    return message_id;
  }

  /** Sends what the outbox holds; what must wait (offline, 5xx, 429) is tried again later. */
  async flush(): Promise<void> {
    clearTimeout(this.retryTimer);
    await this.outbox.flush((m) => this.post(m));
    if (this.outbox.pending().length > 0 && this.auth.user()) {
      this.retryTimer = setTimeout(() => void this.flush(), RETRY_MS);
    }
  }

  /** Moves my read watermark up to `sequenceNumber` (messages came into view). Shown at once;
   * told to the server once for all the messages that come into view together. */
  markRead(conversationId: string, sequenceNumber: number): void {
    const before = this.member(conversationId, this.me())?.last_read_sequence_number;
    if (before === undefined || before >= sequenceNumber) return;
    this.raiseWatermarks(conversationId, this.me(), sequenceNumber, 'read');
    const others = this.history(conversationId)().filter(
      (m) => m.sequence_number > sequenceNumber && m.from_user_id !== this.me(),
    ).length;
    this.patch(conversationId, { unread_count: others });
    const due = this.readsDue.get(conversationId);
    this.readsDue.set(conversationId, Math.max(due ?? 0, sequenceNumber));
    if (due !== undefined) return; // the post already due takes the new mark
    setTimeout(() => void this.postRead(conversationId, before), READ_BATCH_MS);
  }

  private async postRead(conversationId: string, before: number): Promise<void> {
    const upTo = this.readsDue.get(conversationId) ?? 0;
    this.readsDue.delete(conversationId);
    try {
      await this.api.post(`/v1/conversations/${conversationId}/read`, {
        up_to_sequence_number: upTo,
      });
    } catch (e) {
      this.lowerReadWatermark(conversationId, before); // so the next message in view retries
      if (!(e instanceof ApiError && e.transient)) this.report(e);
    }
  }

  /** Tells the others I am typing, at most every few seconds. */
  typed(conversationId: string): void {
    const now = Date.now();
    if (now - this.lastTyping < TYPING_EVERY_MS) return;
    if (this.stream.sendTyping(conversationId)) this.lastTyping = now;
  }

  typers(conversationId: string): string[] {
    const now = this.now();
    return Object.entries(this.typing()[conversationId] ?? {})
      .filter(([, until]) => until > now)
      .map(([userId]) => this.nameOf(userId));
  }

  /** Keeps the members' presence fresh while a conversation is shown; returns a stopper. */
  watchPresence(userIds: string[]): () => void {
    const ids = userIds.filter((id) => id !== this.me()).slice(0, 100);
    if (ids.length === 0) return () => undefined;
    const poll = () =>
      this.api
        .get<Presence[]>(`/v1/presence?user_ids=${ids.join(',')}`)
        .then((states) =>
          this.presence.update((all) => ({
            ...all,
            ...Object.fromEntries(states.map((s) => [s.user_id, s])),
          })),
        )
        .catch(() => undefined);
    void poll();
    const timer = setInterval(poll, PRESENCE_EVERY_MS);
    return () => clearInterval(timer);
  }

  member(conversationId: string, userId: string): Member | undefined {
    return this.conversation(conversationId)?.members.find((m) => m.user_id === userId);
  }

  /** Replaces a conversation after a change to its members. */
  upsert(conversation: Conversation): void {
    const known = this.conversation(conversation.conversation_id);
    const merged = known ? this.fresher(known, conversation) : conversation;
    this.conversationMap.update((all) => ({ ...all, [conversation.conversation_id]: merged }));
  }

  /** The server's members and roles, but what this client saw since (the last message, the
   * unread count, watermarks moved by live statuses or by reading) where it is further. */
  private fresher(known: Conversation, fetched: Conversation): Conversation {
    const before = new Map(known.members.map((m) => [m.user_id, m]));
    const members = fetched.members.map((m) => {
      const seen = before.get(m.user_id);
      if (!seen) return m;
      return {
        ...m,
        last_delivered_sequence_number: Math.max(
          m.last_delivered_sequence_number,
          seen.last_delivered_sequence_number,
        ),
        last_read_sequence_number: Math.max(
          m.last_read_sequence_number,
          seen.last_read_sequence_number,
        ),
      };
    });
    const live = known.last_sequence_number >= fetched.last_sequence_number;
    return {
      ...fetched,
      members,
      ...(live
        ? {
            last_sequence_number: known.last_sequence_number,
            last_message: known.last_message,
            unread_count: known.unread_count,
          }
        : {}),
    };
  }

  forget(conversationId: string): void {
    this.conversationMap.update((all) => {
      const { [conversationId]: _, ...rest } = all;
      return rest;
    });
  }

  private async post(message: Outgoing): Promise<SendOutcome> {
    try {
      const accepted = await this.api.post<{ sequence_number: number; created_at: string }>(
        `/v1/conversations/${message.conversation_id}/messages`,
        { message_id: message.message_id, payload: message.payload },
      );
      this.onMessage({
        message_id: message.message_id,
        conversation_id: message.conversation_id,
        sequence_number: accepted.sequence_number,
        from_user_id: this.me(),
        payload: message.payload,
        created_at: accepted.created_at,
      });
      return 'sent';
    } catch (e) {
      if (e instanceof ApiError && e.transient) return 'retry';
      const detail = e instanceof ApiError ? e.detail : String(e);
      this.refused.update((all) => ({ ...all, [message.message_id]: detail }));
      return 'refused';
    }
  }

  private onConnection(state: ConnectionState): void {
    this.connection.set(state);
    if (state === 'online') {
      void this.flush();
      void this.loadConversations();
    }
  }

  private onMessage(message: Message): void {
    const cid = message.conversation_id;
    this.merge(cid, [message]); // kept even before the conversation is known, or its page loaded
    const known = this.conversation(cid);
    if (!known) {
      void this.loadConversations(); // a conversation started by someone else
      return;
    }
    if (message.sequence_number <= known.last_sequence_number) return; // seen (e.g. my own)
    const mine = message.from_user_id === this.me();
    this.patch(cid, {
      last_sequence_number: message.sequence_number,
      last_message: {
        message_id: message.message_id,
        from_user_id: message.from_user_id,
        sequence_number: message.sequence_number,
        text: message.payload.type === 'text' ? message.payload.text : null,
        type: message.payload.type,
        created_at: message.created_at,
      },
      unread_count: mine ? known.unread_count : known.unread_count + 1,
    });
    if (!mine) this.clearTyping(cid, message.from_user_id);
  }

  private onStatus(change: StatusFrame): void {
    const cid = change.conversation_id;
    const history = this.histories.get(cid);
    const message = history?.().find((m) => m.message_id === change.message_id);
    if (history && message) {
      const receipts = {
        ...message.receipts,
        [change.recipient_id]: later(message.receipts[change.recipient_id], change.status),
      };
      history.update((all) =>
        all.map((m) => (m.message_id === change.message_id ? { ...m, receipts } : m)),
      );
      if (change.status === 'read' || change.status === 'delivered') {
        this.raiseWatermarks(cid, change.recipient_id, message.sequence_number, change.status);
      }
    }
  }

  private onTyping(typing: TypingFrame): void {
    const until = Date.now() + typing.expires_in * 1000;
    this.typing.update((all) => ({
      ...all,
      [typing.conversation_id]: { ...all[typing.conversation_id], [typing.user_id]: until },
    }));
  }

  private clearTyping(conversationId: string, userId: string): void {
    this.typing.update((all) => ({
      ...all,
      [conversationId]: { ...all[conversationId], [userId]: 0 },
    }));
  }

  private raiseWatermarks(cid: string, userId: string, seq: number, status: 'read' | 'delivered') {
    const conversation = this.conversation(cid);
    if (!conversation) return;
    const members = conversation.members.map((m) => {
      if (m.user_id !== userId) return m;
      const delivered = Math.max(m.last_delivered_sequence_number, seq);
      return {
        ...m,
        last_delivered_sequence_number: delivered,
        last_read_sequence_number:
          status === 'read'
            ? Math.max(m.last_read_sequence_number, seq)
            : m.last_read_sequence_number,
      };
    });
    this.patch(cid, { members });
  }

  private lowerReadWatermark(cid: string, seq: number): void {
    const conversation = this.conversation(cid);
    if (!conversation) return;
    const members = conversation.members.map((m) =>
      m.user_id === this.me() ? { ...m, last_read_sequence_number: seq } : m,
    );
    this.patch(cid, { members });
  }

  private patch(cid: string, change: Partial<Conversation>): void {
    this.conversationMap.update((all) =>
      all[cid] ? { ...all, [cid]: { ...all[cid], ...change } } : all,
    );
  }

  private history(conversationId: string): WritableSignal<ChatMessage[]> {
    let history = this.histories.get(conversationId);
    if (!history) {
      history = signal<ChatMessage[]>([]);
      this.histories.set(conversationId, history);
    }
    return history;
  }

  /** Adds messages to a history, once each, kept in sequence order. */
  private merge(conversationId: string, messages: Message[]): void {
    const history = this.history(conversationId);
    const byId = new Map(history().map((m) => [m.message_id, m]));
    for (const m of messages) {
      if (!byId.has(m.message_id)) byId.set(m.message_id, { ...m, receipts: receiptsOf(m) });
    }
    history.set([...byId.values()].sort((a, b) => a.sequence_number - b.sequence_number));
  }

  private report(error: unknown): void {
    this.error.set(error instanceof ApiError ? error.detail : String(error));
  }
}

function activity(c: Conversation): string {
  return c.last_message?.created_at ?? c.created_at;
}

import { DatePipe, DecimalPipe } from '@angular/common';
import {
  Component,
  ElementRef,
  Injector,
  OnDestroy,
  afterNextRender,
  computed,
  effect,
  inject,
  input,
  signal,
  untracked,
  viewChild,
} from '@angular/core';
import { FormsModule } from '@angular/forms';
import { RouterLink } from '@angular/router';

import { ChatMessage, ChatStore } from '../core/chat.store';
import { InViewDirective } from '../core/in-view.directive';
import { DeliveryStatus } from '../core/models';
import { ApiError } from '../core/problem';
import { marksFor, overall } from '../core/receipts';
import { UploadsService } from '../core/uploads.service';
import { MembersComponent } from './members.component';
import { MessageDetailsComponent } from './message-details.component';

const MARK: Record<DeliveryStatus, string> = {
  sent: '✓',
  delivered: '✓✓',
  read: '✓✓',
  failed: '!',
};

/** One conversation: history (scrolling back loads older pages), live messages, receipts,
 * typing and presence, the composer with file uploads. */
@Component({
  selector: 'app-conversation',
  imports: [
    FormsModule,
    RouterLink,
    DatePipe,
    DecimalPipe,
    InViewDirective,
    MembersComponent,
    MessageDetailsComponent,
  ],
  template: `
    @if (conversation(); as c) {
      <section class="conversation" [attr.aria-label]="'Conversation with ' + store.title(c)">
        <header class="conversation-header">
          <a routerLink="/" class="back" aria-label="Back to conversations">‹</a>
          <div>
            <h2>{{ store.title(c) }}</h2>
            <p class="presence" aria-live="polite">{{ status() }}</p>
          </div>
          @if (c.type === 'group') {
            <button
              type="button"
              (click)="showMembers.set(!showMembers())"
              [attr.aria-expanded]="showMembers()"
            >
              Members ({{ c.members.length }})
            </button>
          }
        </header>
        @if (showMembers()) {
          <app-members [conversationId]="id()" />
        }
        @if (details(); as messageId) {
          <app-message-details [messageId]="messageId" (closed)="details.set(null)" />
        }
        <ol class="messages" #scroller aria-label="Messages" aria-live="polite" tabindex="0">
          @if (store.hasOlder(id())) {
            <!-- A new element per oldest message: observing it anew tells whether it is in view
                 still, when a page did not push it out. -->
            @for (oldest of [messages()[0]?.sequence_number]; track oldest) {
              <li class="older" (appInView)="older()">Loading older messages…</li>
            }
          }
          @for (m of messages(); track m.message_id) {
            <li
              class="message"
              [class.mine]="m.from_user_id === me()"
              [attr.data-seq]="m.sequence_number"
              [attr.data-message-id]="m.message_id"
              [attr.data-status]="m.from_user_id === me() ? mark(m) : null"
              (appInView)="seen(m)"
            >
              @if (c.type === 'group' && m.from_user_id !== me()) {
                <span class="sender">{{ store.nameOf(m.from_user_id) }}</span>
              }
              @if (m.payload.type === 'text') {
                <p class="text">{{ m.payload.text }}</p>
              } @else {
                <p class="file">
                  File: {{ m.payload.metadata?.filename ?? 'file' }}
                  @if (m.payload.metadata?.size; as size) {
                    <small>({{ size / 1024 | number: '1.0-0' }} KiB)</small>
                  }
                  <button
                    type="button"
                    (click)="download(m)"
                    [attr.aria-label]="'Download ' + (m.payload.metadata?.filename ?? 'file')"
                  >
                    Download
                  </button>
                </p>
              }
              <span class="meta">
                <time>{{ m.created_at | date: 'shortTime' }}</time>
                @if (m.from_user_id === me()) {
                  <button
                    type="button"
                    class="mark"
                    [attr.data-mark]="mark(m)"
                    (click)="details.set(m.message_id)"
                    [attr.aria-label]="markLabel(m) + '. Show delivery details'"
                  >
                    {{ markText(m) }}
                  </button>
                }
              </span>
              @if (c.type === 'group' && m.from_user_id === me()) {
                <span class="receipts">{{ markLabel(m) }}</span>
              }
            </li>
          }
          @for (p of pending(); track p.message_id) {
            <li
              class="message mine pending"
              [attr.data-message-id]="p.message_id"
              data-status="queued"
            >
              <p class="text">
                {{
                  p.payload.type === 'text'
                    ? p.payload.text
                    : 'File: ' + (p.payload.metadata?.filename ?? 'file')
                }}
              </p>
              <span class="meta">
                @if (store.refused()[p.message_id]; as why) {
                  <span class="error" role="alert">Not sent: {{ why }}</span>
                } @else {
                  <span>waiting to send</span>
                }
              </span>
            </li>
          }
        </ol>
        @for (u of uploads(); track u.key) {
          <div class="upload" role="group" [attr.aria-label]="'Upload of ' + u.name">
            <span class="name">{{ u.name }}</span>
            <progress
              [value]="u.sent"
              [max]="u.size"
              [attr.aria-label]="'Uploaded of ' + u.name"
            ></progress>
            <span class="percent"
              >{{ (u.size ? (u.sent / u.size) * 100 : 100) | number: '1.0-0' }}%</span
            >
            @if (u.state === 'uploading') {
              <button type="button" (click)="uploader.pause(u.key)">Pause</button>
            } @else {
              <button type="button" (click)="uploader.resume(u.key)">Resume</button>
            }
            <button type="button" (click)="uploader.cancel(u.key)">Cancel</button>
            @if (u.error) {
              <span class="error" role="alert">{{ u.error }}</span>
            }
          </div>
        }
        @if (error()) {
          <p class="error" role="alert">{{ error() }}</p>
        }
        <form class="composer" (ngSubmit)="send()">
          <label class="attach button" aria-label="Attach a file"
            >+ File
            <input type="file" (change)="attach($event)" class="visually-hidden" />
          </label>
          <textarea
            name="text"
            [(ngModel)]="text"
            (input)="store.typed(id())"
            (keydown.enter)="enter($event)"
            rows="1"
            placeholder="Message"
            aria-label="Message"
          ></textarea>
          <button type="submit" class="primary" [disabled]="!text.trim()">Send</button>
        </form>
      </section>
    } @else {
      <p class="welcome" role="status">{{ error() ?? 'Loading…' }}</p>
    }
  `,
})
export class ConversationComponent implements OnDestroy {
  readonly store = inject(ChatStore);
  readonly uploader = inject(UploadsService);
  private readonly injector = inject(Injector);
  /** The route's `:id`. */
  readonly id = input.required<string>();
  readonly scroller = viewChild<ElementRef<HTMLElement>>('scroller');
  readonly conversation = computed(() => this.store.conversation(this.id()));
  readonly messages = computed(() => this.store.messages(this.id())());
  readonly pending = computed(() => {
    // Accepted a moment ago, the message shows in the history before it leaves the outbox.
    const shown = new Set(this.messages().map((m) => m.message_id));
    return this.store
      .outgoing()
      .filter((m) => m.conversation_id === this.id() && !shown.has(m.message_id));
  });
  readonly uploads = computed(() =>
    this.uploader.uploads().filter((u) => u.conversationId === this.id()),
  );
  readonly me = computed(() => this.store.me());
  readonly showMembers = signal(false);
  readonly details = signal<string | null>(null);
  readonly error = signal<string | null>(null);
  /** Who is typing, or the other member's presence. */
  readonly status = computed(() => {
    const typers = this.store.typers(this.id());
    if (typers.length) return `${typers.join(', ')} ${typers.length > 1 ? 'are' : 'is'} typing…`;
    const c = this.conversation();
    if (!c) return '';
    const others = c.members.filter((m) => m.user_id !== this.me());
    const presence = this.store.presence();
    if (c.type === 'group') {
      const online = others.filter((m) => presence[m.user_id]?.online).length;
      return `${c.members.length} members, ${online + 1} online`;
    }
    const state = others[0] && presence[others[0].user_id];
    if (!state) return '';
    if (state.online) return 'online';
    return state.last_seen ? `last seen ${new Date(state.last_seen).toLocaleString()}` : 'offline';
  });
  text = '';
  private stopPresence: () => void = () => undefined;
  private loadingOlder = false;
  private olderAgain = false;

  constructor() {
    effect(() => {
      const id = this.id();
      untracked(() => void this.open(id));
    });
    // Follow new messages when the reader is at the bottom already.
    effect(() => {
      this.messages();
      this.pending();
      const el = untracked(() => this.scroller()?.nativeElement);
      if (!el || this.loadingOlder) return;
      const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 120;
      if (atBottom)
        afterNextRender(() => (el.scrollTop = el.scrollHeight), { injector: this.injector });
    });
  }

  ngOnDestroy(): void {
    this.stopPresence();
  }

  async open(id: string): Promise<void> {
    this.error.set(null);
    this.showMembers.set(false);
    this.details.set(null);
    this.stopPresence();
    try {
      await this.store.open(id);
      const c = this.store.conversation(id);
      this.stopPresence = this.store.watchPresence(c?.members.map((m) => m.user_id) ?? []);
      afterNextRender(() => this.scrollToBottom(), { injector: this.injector });
    } catch (e) {
      this.error.set(e instanceof ApiError ? e.detail : String(e));
    }
  }

  /** A message came into view: it is read, if this window is the one being looked at. */
  seen(m: ChatMessage): void {
    if (m.from_user_id === this.me() || document.visibilityState !== 'visible') return;
    this.store.markRead(this.id(), m.sequence_number);
  }

  async older(): Promise<void> {
    const el = this.scroller()?.nativeElement;
    if (!el) return;
    if (this.loadingOlder) {
      this.olderAgain = true; // the top came into view again meanwhile: load on after this page
      return;
    }
    this.loadingOlder = true;
    this.olderAgain = false;
    const fromBottom = el.scrollHeight - el.scrollTop;
    try {
      await this.store.loadOlder(this.id());
    } catch (e) {
      this.error.set(e instanceof ApiError ? e.detail : String(e));
    } finally {
      this.loadingOlder = false;
    }
    // Keep the message being read where it was while older ones appear above it.
    afterNextRender(() => (el.scrollTop = el.scrollHeight - fromBottom), {
      injector: this.injector,
    });
    if (this.olderAgain) void this.older();
  }

  send(): void {
    const text = this.text.trim();
    if (!text) return;
    this.store.send(this.id(), { type: 'text', text });
    this.text = '';
    afterNextRender(() => this.scrollToBottom(), { injector: this.injector });
  }

  /** Enter sends; Shift+Enter makes a new line. */
  enter(event: Event): void {
    if ((event as KeyboardEvent).shiftKey) return;
    event.preventDefault();
    this.send();
  }

  attach(event: Event): void {
    const input = event.target as HTMLInputElement;
    const file = input.files?.[0];
    input.value = '';
    if (file) void this.uploader.start(this.id(), file);
  }

  async download(m: ChatMessage): Promise<void> {
    if (m.payload.type !== 'file') return;
    try {
      const fileId = m.payload.file_reference?.file_id ?? m.payload.file_id;
      await this.uploader.download(fileId, m.payload.metadata?.filename ?? 'file');
    } catch (e) {
      this.error.set(e instanceof ApiError ? e.detail : String(e));
    }
  }

  mark(m: ChatMessage): DeliveryStatus {
    return overall(this.marks(m));
  }

  markText(m: ChatMessage): string {
    return MARK[this.mark(m)];
  }

  /** "read by bob, delivered to carol" (per member in groups). */
  markLabel(m: ChatMessage): string {
    const byStatus = new Map<DeliveryStatus, string[]>();
    for (const [userId, status] of Object.entries(this.marks(m))) {
      byStatus.set(status, [...(byStatus.get(status) ?? []), this.store.nameOf(userId)]);
    }
    const words: Record<DeliveryStatus, string> = {
      read: 'read by',
      delivered: 'delivered to',
      sent: 'sent to',
      failed: 'failed for',
    };
    const parts = (['read', 'delivered', 'sent', 'failed'] as DeliveryStatus[])
      .filter((s) => byStatus.has(s))
      .map((s) => `${words[s]} ${byStatus.get(s)!.join(', ')}`);
    return parts.join('; ') || 'sent';
  }

  private marks(m: ChatMessage): Record<string, DeliveryStatus> {
    return marksFor(m, m.receipts, this.conversation()?.members ?? []);
  }

  private scrollToBottom(): void {
    const el = this.scroller()?.nativeElement;
    if (el) el.scrollTop = el.scrollHeight;
  }
}

import { DatePipe } from '@angular/common';
import { Component, OnDestroy, OnInit, effect, inject, signal } from '@angular/core';
import { NavigationEnd, Router, RouterLink, RouterLinkActive, RouterOutlet } from '@angular/router';

import { AuthService } from '../core/auth.service';
import { ChatStore } from '../core/chat.store';
import { Conversation } from '../core/models';

/** The signed-in frame: header, the conversation list, and the open screen beside it. */
@Component({
  selector: 'app-shell',
  imports: [RouterOutlet, RouterLink, RouterLinkActive, DatePipe],
  template: `
    <div class="shell" [class.detail]="detail()">
      <header class="topbar">
        <a routerLink="/" class="brand">Chat4All</a>
        <span
          class="connection"
          [attr.data-state]="store.connection()"
          role="status"
          [attr.aria-label]="'Connection: ' + store.connection()"
          >{{ store.connection() }}</span
        >
        @if (store.outgoing().length) {
          <span class="queued" role="status">{{ store.outgoing().length }} waiting to send</span>
        }
        <span class="spacer"></span>
        <span class="me">{{ auth.user()?.username }}</span>
        <a routerLink="/channels" aria-label="My channels">Channels</a>
        <button type="button" (click)="signOut()">Sign out</button>
      </header>
      <nav class="sidebar" aria-label="Conversations">
        <a routerLink="/new" class="button primary new">New conversation</a>
        @if (store.error()) {
          <p class="error" role="alert">{{ store.error() }}</p>
        }
        <ul class="conversations">
          @for (c of store.conversations(); track c.conversation_id) {
            <li>
              <a
                [routerLink]="['/c', c.conversation_id]"
                routerLinkActive="active"
                [attr.aria-label]="label(c)"
                class="conversation-item"
              >
                <span class="title">{{ store.title(c) }}</span>
                @if (c.unread_count > 0) {
                  <span class="unread" aria-hidden="true">{{ c.unread_count }}</span>
                }
                <span class="preview">{{ preview(c) }}</span>
                <time class="when">{{
                  c.last_message?.created_at ?? c.created_at | date: 'short'
                }}</time>
              </a>
            </li>
          } @empty {
            <li class="empty">No conversations yet: start one.</li>
          }
        </ul>
      </nav>
      <main class="content"><router-outlet /></main>
    </div>
  `,
})
export class ShellComponent implements OnInit, OnDestroy {
  readonly auth = inject(AuthService);
  readonly store = inject(ChatStore);
  private readonly router = inject(Router);
  /** On a phone, the list or the open screen shows, not both. */
  readonly detail = signal(this.router.url !== '/');
  private readonly navigation = this.router.events.subscribe((e) => {
    if (e instanceof NavigationEnd) this.detail.set(e.urlAfterRedirects !== '/');
  });

  constructor() {
    // The session can end by itself (a refresh token revoked elsewhere): back to sign in.
    effect(() => {
      if (this.auth.user() === null) void this.router.navigateByUrl('/signin');
    });
  }

  ngOnInit(): void {
    this.store.start();
  }

  ngOnDestroy(): void {
    this.navigation.unsubscribe();
    this.store.stop();
  }

  preview(c: Conversation): string {
    const last = c.last_message;
    if (!last) return 'No messages yet';
    const what = last.type === 'text' ? (last.text ?? '') : 'a file';
    if (last.from_user_id === this.store.me()) return `You: ${what}`;
    // In a private conversation the title already says who wrote.
    return c.type === 'group' ? `${this.store.nameOf(last.from_user_id)}: ${what}` : what;
  }

  label(c: Conversation): string {
    const unread = c.unread_count > 0 ? `, ${c.unread_count} unread` : '';
    return `${this.store.title(c)}${unread}. ${this.preview(c)}`;
  }

  async signOut(): Promise<void> {
    this.store.stop();
    await this.auth.signOut();
    await this.router.navigateByUrl('/signin');
  }
}

@Component({
  selector: 'app-welcome',
  template: `<section class="welcome"><p>Pick a conversation, or start a new one.</p></section>`,
})
export class WelcomeComponent {}

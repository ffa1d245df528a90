import { Component, inject, signal } from '@angular/core';
import { FormsModule } from '@angular/forms';
import { Router } from '@angular/router';

import { ApiService } from '../core/api.service';
import { ChatStore } from '../core/chat.store';
import { Conversation, UserRef } from '../core/models';
import { ApiError } from '../core/problem';

/** Start a private conversation by username, or a group with a name and members. */
@Component({
  selector: 'app-new-conversation',
  imports: [FormsModule],
  template: `
    <section class="panel">
      <h2>New private conversation</h2>
      <form (ngSubmit)="startPrivate()" class="inline" aria-label="New private conversation">
        <input
          name="username"
          [(ngModel)]="username"
          placeholder="username"
          aria-label="Username"
          required
        />
        <button type="submit" class="primary" [disabled]="busy()">Start</button>
      </form>
      <h2>New group</h2>
      <form (ngSubmit)="startGroup()" aria-label="New group">
        <label>Group name <input name="name" [(ngModel)]="groupName" required /></label>
        <label
          >Members (usernames, separated by commas or spaces)
          <input name="members" [(ngModel)]="groupMembers" />
        </label>
        <button type="submit" class="primary" [disabled]="busy()">Create group</button>
      </form>
      @if (error()) {
        <p class="error" role="alert">{{ error() }}</p>
      }
    </section>
  `,
})
export class NewConversationComponent {
  private readonly api = inject(ApiService);
  private readonly store = inject(ChatStore);
  private readonly router = inject(Router);
  readonly busy = signal(false);
  readonly error = signal<string | null>(null);
  username = '';
  groupName = '';
  groupMembers = '';

  startPrivate(): Promise<void> {
    return this.create(async () => ({
      type: 'private',
      members: [(await this.lookUp(this.username)).user_id],
    }));
  }

  startGroup(): Promise<void> {
    return this.create(async () => {
      const names = this.groupMembers.split(/[\s,]+/).filter(Boolean);
      const users = await Promise.all(names.map((n) => this.lookUp(n)));
      return {
        type: 'group',
        members: users.map((u) => u.user_id),
        metadata: { name: this.groupName.trim() },
      };
    });
  }

  private async lookUp(username: string): Promise<UserRef> {
    const user = await this.api.get<UserRef>(
      `/v1/users/by-username/${encodeURIComponent(username.trim())}`,
    );
    this.store.names.update((all) => ({ ...all, [user.user_id]: user.username }));
    return user;
  }

  private async create(body: () => Promise<object>): Promise<void> {
    this.busy.set(true);
    this.error.set(null);
    try {
      const conversation = await this.api.post<Conversation>('/v1/conversations', await body());
      this.store.upsert(conversation);
      await this.router.navigate(['/c', conversation.conversation_id]);
    } catch (e) {
      this.error.set(e instanceof ApiError ? e.detail : String(e));
    } finally {
      this.busy.set(false);
    }
  }
}

import { Component, computed, inject, input, signal } from '@angular/core';
import { FormsModule } from '@angular/forms';
import { Router } from '@angular/router';

import { ApiService } from '../core/api.service';
import { ChatStore } from '../core/chat.store';
import { Conversation, Role, UserRef } from '../core/models';
import { ApiError } from '../core/problem';

/** A group's members and roles: add by username, change roles, remove, leave. What a member
 * may do follows their role; the server has the last word and its refusal is shown. */
@Component({
  selector: 'app-members',
  imports: [FormsModule],
  template: `
    <section class="members" aria-label="Members">
      <ul>
        @for (m of members(); track m.user_id) {
          <li>
            <span class="name"
              >{{ store.nameOf(m.user_id) }}{{ m.user_id === store.me() ? ' (you)' : '' }}</span
            >
            @if (myRole() === 'owner' && m.user_id !== store.me()) {
              <select
                [ngModel]="m.role"
                (ngModelChange)="setRole(m.user_id, $event)"
                [attr.aria-label]="'Role of ' + store.nameOf(m.user_id)"
              >
                <option value="member">member</option>
                <option value="admin">admin</option>
                <option value="owner">owner</option>
              </select>
            } @else {
              <span class="role">{{ m.role }}</span>
            }
            @if (m.user_id !== store.me() && canRemove(m.role)) {
              <button
                type="button"
                (click)="remove(m.user_id)"
                [attr.aria-label]="'Remove ' + store.nameOf(m.user_id)"
              >
                Remove
              </button>
            }
          </li>
        }
      </ul>
      @if (myRole() !== 'member') {
        <form (ngSubmit)="add()" class="inline" aria-label="Add a member">
          <input
            name="username"
            [(ngModel)]="username"
            placeholder="username"
            aria-label="Username to add"
            required
          />
          <select name="role" [(ngModel)]="role" aria-label="Role of the new member">
            <option value="member">member</option>
            @if (myRole() === 'owner') {
              <option value="admin">admin</option>
            }
          </select>
          <button type="submit">Add</button>
        </form>
      }
      <button type="button" (click)="leave()">Leave the group</button>
      @if (error()) {
        <p class="error" role="alert">{{ error() }}</p>
      }
    </section>
  `,
})
export class MembersComponent {
  readonly store = inject(ChatStore);
  private readonly api = inject(ApiService);
  private readonly router = inject(Router);
  readonly conversationId = input.required<string>();
  readonly members = computed(() => this.store.conversation(this.conversationId())?.members ?? []);
  readonly myRole = computed(
    () => this.members().find((m) => m.user_id === this.store.me())?.role ?? 'member',
  );
  readonly error = signal<string | null>(null);
  username = '';
  role: Role = 'member';

  canRemove(role: Role): boolean {
    const mine = this.myRole();
    return (mine === 'owner' && role !== 'owner') || (mine === 'admin' && role === 'member');
  }

  add(): Promise<void> {
    return this.run(async () => {
      const user = await this.api.get<UserRef>(
        `/v1/users/by-username/${encodeURIComponent(this.username.trim())}`,
      );
      await this.api.post(`${this.path()}/members`, { user_id: user.user_id, role: this.role });
      this.username = '';
    });
  }

  setRole(userId: string, role: Role): Promise<void> {
    return this.run(() => this.api.patch(`${this.path()}/members/${userId}`, { role }));
  }

  remove(userId: string): Promise<void> {
    return this.run(() => this.api.delete(`${this.path()}/members/${userId}`));
  }

  async leave(): Promise<void> {
    try {
      await this.api.delete(`${this.path()}/members/${this.store.me()}`);
      this.store.forget(this.conversationId());
      await this.router.navigateByUrl('/');
    } catch (e) {
      this.error.set(e instanceof ApiError ? e.detail : String(e));
    }
  }

  private path(): string {
    return `/v1/conversations/${this.conversationId()}`;
  }

  /** Runs a change, then shows the members as the server has them now. */
  private async run(change: () => Promise<unknown>): Promise<void> {
    this.error.set(null);
    try {
      await change();
    } catch (e) {
      this.error.set(e instanceof ApiError ? e.detail : String(e));
    }
    this.store.upsert(await this.api.get<Conversation>(this.path()));
  }
}

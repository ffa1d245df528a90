import { Component, OnInit, inject, signal } from '@angular/core';
import { FormsModule } from '@angular/forms';

import { ApiService } from '../core/api.service';
import { LinkedChannel } from '../core/models';
import { ApiError } from '../core/problem';

const CHANNELS = [
  { type: 'whatsapp', label: 'WhatsApp', hint: 'phone number, e.g. +5511999990000' },
  { type: 'telegram', label: 'Telegram', hint: 'chat id' },
  { type: 'instagram', label: 'Instagram', hint: 'Instagram-scoped id' },
  { type: 'messenger', label: 'Messenger', hint: 'page-scoped id' },
];

/** Link my own accounts on the external channels, so messages to me can reach me there. */
@Component({
  selector: 'app-channels',
  imports: [FormsModule],
  template: `
    <section class="panel">
      <h2>My channels</h2>
      <ul class="linked">
        @for (c of linked(); track c.channel_type) {
          <li>
            <strong>{{ c.channel_type }}</strong> {{ c.channel_user_id }}
          </li>
        } @empty {
          <li>No channel linked.</li>
        }
      </ul>
      <form (ngSubmit)="link()" aria-label="Link a channel">
        <label
          >Channel
          <select name="type" [(ngModel)]="type">
            @for (c of channels; track c.type) {
              <option [value]="c.type">{{ c.label }}</option>
            }
          </select>
        </label>
        <label
          >My id there
          <input name="channelUserId" [(ngModel)]="channelUserId" [placeholder]="hint()" required
        /></label>
        <button type="submit" class="primary">Link</button>
      </form>
      @if (error()) {
        <p class="error" role="alert">{{ error() }}</p>
      }
    </section>
  `,
})
export class ChannelsComponent implements OnInit {
  private readonly api = inject(ApiService);
  readonly channels = CHANNELS;
  readonly linked = signal<LinkedChannel[]>([]);
  readonly error = signal<string | null>(null);
  type = 'whatsapp';
  channelUserId = '';

  ngOnInit(): void {
    void this.load();
  }

  hint(): string {
    return CHANNELS.find((c) => c.type === this.type)?.hint ?? '';
  }

  async link(): Promise<void> {
    this.error.set(null);
    try {
      await this.api.put(`/v1/users/me/channels/${this.type}`, {
        channel_user_id: this.channelUserId.trim(),
      });
      this.channelUserId = '';
      await this.load();
    } catch (e) {
      this.error.set(e instanceof ApiError ? e.detail : String(e));
    }
  }

  private async load(): Promise<void> {
    try {
      const body = await this.api.get<LinkedChannel[] | { items: LinkedChannel[] }>(
        '/v1/users/me/channels',
      );
      this.linked.set(Array.isArray(body) ? body : body.items);
    } catch (e) {
      this.error.set(e instanceof ApiError ? e.detail : String(e));
    }
  }
}

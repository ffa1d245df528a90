import { DatePipe, KeyValuePipe } from '@angular/common';
import { Component, effect, inject, input, output, signal } from '@angular/core';

import { ApiService } from '../core/api.service';
import { ChatStore } from '../core/chat.store';
import { Message } from '../core/models';
import { ApiError } from '../core/problem';

/** A message's status per recipient and channel (internal, WhatsApp, Telegram, ...), with the
 * platform's reason when one failed, and its status history. */
@Component({
  selector: 'app-message-details',
  imports: [DatePipe, KeyValuePipe],
  template: `
    <section
      class="details"
      role="dialog"
      aria-label="Delivery details"
      (keydown.escape)="closed.emit()"
    >
      <header>
        <h3>Delivery details</h3>
        <button type="button" (click)="closed.emit()" aria-label="Close delivery details">✕</button>
      </header>
      @if (message(); as m) {
        <table>
          <thead>
            <tr>
              <th scope="col">Recipient</th>
              <th scope="col">Channel</th>
              <th scope="col">Status</th>
              <th scope="col">Since</th>
            </tr>
          </thead>
          <tbody>
            @for (r of m.channel_delivery ?? {} | keyvalue; track r.key) {
              @for (c of r.value | keyvalue; track c.key) {
                <tr [attr.data-channel]="c.key">
                  <td>{{ store.nameOf(r.key) }}</td>
                  <td>{{ c.key }}</td>
                  <td class="status">
                    {{ c.value.status }}
                    @if (c.value.details?.['reason']; as reason) {
                      <small>({{ reason }})</small>
                    }
                  </td>
                  <td>{{ c.value.updated_at | date: 'medium' }}</td>
                </tr>
              }
            }
          </tbody>
        </table>
      }
      @if (error()) {
        <p class="error" role="alert">{{ error() }}</p>
      }
    </section>
  `,
})
export class MessageDetailsComponent {
  readonly store = inject(ChatStore);
  private readonly api = inject(ApiService);
  readonly messageId = input.required<string>();
  readonly closed = output<void>();
  readonly message = signal<Message | null>(null);
  readonly error = signal<string | null>(null);

  constructor() {
    effect(() => {
      const id = this.messageId();
      this.api
        .get<Message>(`/v1/messages/${id}`)
        .then((m) => this.message.set(m))
        .catch((e) => this.error.set(e instanceof ApiError ? e.detail : String(e)));
    });
  }
}

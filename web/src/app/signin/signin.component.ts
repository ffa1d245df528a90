import { Component, inject, signal } from '@angular/core';
import { FormsModule } from '@angular/forms';
import { Router } from '@angular/router';

import { AuthService } from '../core/auth.service';
import { ApiError } from '../core/problem';

/** Register or sign in; one form, two modes. */
@Component({
  selector: 'app-signin',
  imports: [FormsModule],
  template: `
    <main class="signin">
      <h1>Chat4All</h1>
      <div class="tabs" role="tablist" aria-label="Account">
        <button
          role="tab"
          type="button"
          [attr.aria-selected]="mode() === 'signin'"
          (click)="mode.set('signin')"
        >
          Sign in
        </button>
        <button
          role="tab"
          type="button"
          [attr.aria-selected]="mode() === 'register'"
          (click)="mode.set('register')"
        >
          Register
        </button>
      </div>
      <form (ngSubmit)="submit()" [attr.aria-label]="mode() === 'signin' ? 'Sign in' : 'Register'">
        <label
          >Username <input name="username" [(ngModel)]="username" autocomplete="username" required
        /></label>
        @if (mode() === 'register') {
          <label
            >Email
            <input name="email" type="email" [(ngModel)]="email" autocomplete="email" required
          /></label>
        }
        <label
          >Password
          <input
            name="password"
            type="password"
            [(ngModel)]="password"
            required
            [attr.autocomplete]="mode() === 'signin' ? 'current-password' : 'new-password'"
          />
        </label>
        @if (error()) {
          <p class="error" role="alert">{{ error() }}</p>
        }
        <button type="submit" class="primary" [disabled]="busy()">
          {{ mode() === 'signin' ? 'Sign in' : 'Create account' }}
        </button>
      </form>
    </main>
  `,
})
export class SignInComponent {
  private readonly auth = inject(AuthService);
  private readonly router = inject(Router);
  readonly mode = signal<'signin' | 'register'>('signin');
  readonly busy = signal(false);
  readonly error = signal<string | null>(null);
  username = '';
  email = '';
  password = '';

  async submit(): Promise<void> {
    this.busy.set(true);
    this.error.set(null);
    try {
      if (this.mode() === 'register') {
        await this.auth.register(this.username, this.email, this.password);
      } else {
        await this.auth.signIn(this.username, this.password);
      }
      await this.router.navigateByUrl('/');
    } catch (e) {
      this.error.set(e instanceof ApiError ? e.detail : String(e));
    } finally {
      this.busy.set(false);
    }
  }
}

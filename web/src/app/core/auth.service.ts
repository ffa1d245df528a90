import { Injectable, signal } from '@angular/core';

import { Tokens, UserRef } from './models';
import { ApiError } from './problem';

const SESSION_KEY = 'chat4all.session';
/** Refresh this long before the access token expires (at most half its life), so requests
 * never carry a stale one. */
const REFRESH_MARGIN_MS = 60_000;

interface Session {
  access_token: string;
  refresh_token: string;
  refresh_at: number; // epoch ms
  user: UserRef;
}

/**
 * The signed-in session: tokens kept in localStorage and refreshed silently before they expire
 * (and on a 401). Refresh tokens work once, so a refresh runs under a Web Lock shared by all tabs
 * and re-reads storage first: a second tab uses the tokens the first one got instead of
 * presenting a spent refresh token, which would revoke the whole session.
 */
@Injectable({ providedIn: 'root' })
export class AuthService {
  readonly user = signal<UserRef | null>(this.stored()?.user ?? null);
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;

  constructor() {
    if (this.stored()) this.scheduleRefresh();
  }

  async register(username: string, email: string, password: string): Promise<void> {
    await post('/v1/auth/register', { username, email, password });
    await this.signIn(username, password);
  }

  async signIn(username: string, password: string): Promise<void> {
    const tokens = await post<Tokens>('/v1/auth/token', { username, password });
    const me = await fetchJson<UserRef>('/v1/users/me', tokens.access_token);
    this.save(tokens, { user_id: me.user_id, username: me.username });
  }

  async signOut(): Promise<void> {
    const session = this.stored();
    this.clear();
    if (session) {
      // Best effort: the tokens are gone from this browser either way.
      await fetch('/v1/auth/logout', {
        method: 'POST',
        headers: jsonHeaders(session.access_token),
        body: JSON.stringify({ refresh_token: session.refresh_token }),
      }).catch(() => undefined);
    }
  }

  /** A valid access token, refreshed first when it is about to expire. */
  async accessToken(): Promise<string> {
    const session = this.stored();
    if (!session) throw new ApiError(401, 'Signed out', 'sign in again');
    if (Date.now() < session.refresh_at) return session.access_token;
    return this.refresh();
  }

  /** New tokens now (`force`: even if the stored ones look fresh, e.g. after a 401). */
  async refresh(force = false): Promise<string> {
    const before = this.stored()?.access_token;
    const run = () => this.refreshLocked(force ? before : undefined);
    const locks = globalThis.navigator?.locks;
    return locks ? locks.request('chat4all.refresh', run) : run();
  }

  private async refreshLocked(stale: string | undefined): Promise<string> {
    const session = this.stored();
    if (!session) throw new ApiError(401, 'Signed out', 'sign in again');
    const fresh = Date.now() < session.refresh_at;
    if (fresh && session.access_token !== stale) return session.access_token; // another tab did it
    try {
      const tokens = await post<Tokens>('/v1/auth/refresh', {
        refresh_token: session.refresh_token,
      });
      this.save(tokens, session.user);
      return tokens.access_token;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) this.clear(); // the session is over
      throw error;
    }
  }

  private save(tokens: Tokens, user: UserRef): void {
    const lifetime = tokens.expires_in * 1000;
    const session: Session = {
      access_token: tokens.access_token,
      refresh_token: tokens.refresh_token,
      refresh_at: Date.now() + lifetime - Math.min(REFRESH_MARGIN_MS, lifetime / 2),
      user,
    };
    localStorage.setItem(SESSION_KEY, JSON.stringify(session));
    this.user.set(user);
    this.scheduleRefresh();
  }

  private clear(): void {
    localStorage.removeItem(SESSION_KEY);
    clearTimeout(this.refreshTimer);
    this.user.set(null);
  }

  private scheduleRefresh(): void {
    clearTimeout(this.refreshTimer);
    const session = this.stored();
    if (!session) return;
    const due = Math.max(0, session.refresh_at - Date.now());
    this.refreshTimer = setTimeout(() => {
      this.refresh().catch(() => this.scheduleRetry());
    }, due);
  }

  private scheduleRetry(): void {
    // Offline: try again shortly; a 401 has already signed out.
    if (this.stored()) this.refreshTimer = setTimeout(() => this.scheduleRefresh(), 10_000);
  }

  private stored(): Session | null {
    const raw = localStorage.getItem(SESSION_KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  }
}

function jsonHeaders(token?: string): Record<string, string> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (token) headers['Authorization'] = `Bearer ${token}`;
  return headers;
}

async function post<T>(path: string, body: unknown): Promise<T> {
  return send<T>(path, { method: 'POST', headers: jsonHeaders(), body: JSON.stringify(body) });
}

async function fetchJson<T>(path: string, token: string): Promise<T> {
  return send<T>(path, { headers: jsonHeaders(token) });
}

async function send<T>(path: string, init: RequestInit): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, init);
  } catch {
    throw ApiError.offline();
  }
  if (!response.ok) throw await ApiError.from(response);
  return (await response.json()) as T;
}

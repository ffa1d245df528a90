import { Injectable, inject, signal } from '@angular/core';
import { Upload } from 'tus-js-client';

import { ApiService } from './api.service';
import { AuthService } from './auth.service';
import { ChatStore } from './chat.store';

export interface UploadState {
  key: string;
  conversationId: string;
  name: string;
  size: number;
  sent: number;
  state: 'uploading' | 'paused' | 'failed';
  error?: string;
}

interface FileInfo {
  file_id: string;
  download_url: string;
  filename?: string;
}

/** Parts of this size go in one PATCH: large enough for S3's 5 MiB parts, small enough to
 * show progress and lose little to a pause. */
const CHUNK_BYTES = 8 * 1024 * 1024;

/**
 * Resumable uploads over tus 1.0.0 (`/v1/uploads`); the upload's id is the `file_id` of the
 * file message sent once it completes. Pausing aborts the request; resuming asks the server
 * for its offset (HEAD) and goes on from there, also after a reload (tus-js-client keeps the
 * upload's URL in localStorage, keyed by the file's fingerprint).
 */
@Injectable({ providedIn: 'root' })
export class UploadsService {
  private readonly auth = inject(AuthService);
  private readonly api = inject(ApiService);
  private readonly store = inject(ChatStore);
  readonly uploads = signal<UploadState[]>([]);
  private readonly running = new Map<string, Upload>();

  async start(conversationId: string, file: File): Promise<void> {
    const key = `${conversationId}:${file.name}:${file.size}:${file.lastModified}`;
    if (this.running.has(key)) return;
    const metadata = {
      filename: file.name,
      filetype: file.type || 'application/octet-stream',
      conversation_id: conversationId,
    };
    const upload = new Upload(file, {
      endpoint: '/v1/uploads',
      chunkSize: CHUNK_BYTES,
      retryDelays: [0, 1000, 3000, 5000, 10000],
      metadata,
      onBeforeRequest: async (request) => {
        request.setHeader('Authorization', `Bearer ${await this.auth.accessToken()}`);
      },
      onProgress: (sent) => this.update(key, { sent, state: 'uploading' }),
      onError: (error) => this.update(key, { state: 'failed', error: error.message }),
      onSuccess: () => {
        const fileId = (upload.url ?? '').split('/').pop() ?? '';
        this.finish(key);
        this.store.send(conversationId, {
          type: 'file',
          file_id: fileId,
          metadata: { filename: file.name, size: file.size, filetype: metadata.filetype },
        });
      },
    });
    this.running.set(key, upload);
    this.uploads.update((all) => [
      ...all,
      { key, conversationId, name: file.name, size: file.size, sent: 0, state: 'uploading' },
    ]);
    const previous = await upload.findPreviousUploads();
    if (previous.length > 0) upload.resumeFromPreviousUpload(previous[0]);
    upload.start();
  }

  async pause(key: string): Promise<void> {
    await this.running.get(key)?.abort();
    this.update(key, { state: 'paused' });
  }

  resume(key: string): void {
    this.update(key, { state: 'uploading', error: undefined });
    this.running.get(key)?.start();
  }

  async cancel(key: string): Promise<void> {
    await this.running.get(key)?.abort(true); // true: DELETE the upload on the server
    this.finish(key);
  }

  /** Saves a file: its signed, expiring URL is asked for at the moment of the click. */
  async download(fileId: string, filename: string): Promise<void> {
    const info = await this.api.get<FileInfo>(`/v1/files/${fileId}`);
    const link = document.createElement('a');
    link.href = info.download_url;
    link.download = info.filename ?? filename;
    link.rel = 'noopener';
    document.body.appendChild(link);
    link.click();
    link.remove();
  }

  private update(key: string, change: Partial<UploadState>): void {
    this.uploads.update((all) => all.map((u) => (u.key === key ? { ...u, ...change } : u)));
  }

  private finish(key: string): void {
    this.running.delete(key);
    this.uploads.update((all) => all.filter((u) => u.key !== key));
  }
}

/** The API's shapes, as docs/api.md describes them (only the fields the client uses). */

export type Role = 'owner' | 'admin' | 'member';
export type ConversationType = 'private' | 'group';
export type DeliveryStatus = 'sent' | 'delivered' | 'read' | 'failed';

export interface Tokens {
  access_token: string;
  refresh_token: string;
  expires_in: number;
}

export interface UserRef {
  user_id: string;
  username: string;
}

export interface Member {
  user_id: string;
  role: Role;
  last_read_sequence_number: number;
  last_delivered_sequence_number: number;
}

export interface LastMessage {
  message_id: string;
  from_user_id: string;
  sequence_number: number;
  text: string | null;
  type: string;
  created_at: string;
}

export interface Conversation {
  conversation_id: string;
  type: ConversationType;
  created_at: string;
  metadata: Record<string, unknown>;
  members: Member[];
  last_sequence_number: number;
  last_message: LastMessage | null;
  unread_count: number;
}

export interface TextPayload {
  type: 'text';
  text: string;
}

export interface FilePayload {
  type: 'file';
  file_id: string;
  /** What the server stores and sends back: the file as it was when the message was sent. */
  file_reference?: { file_id: string; filename?: string; mime_type?: string; size_bytes?: number };
  metadata?: { filename?: string; size?: number; filetype?: string };
}

export type Payload = TextPayload | FilePayload;

export interface ChannelState {
  status: DeliveryStatus;
  updated_at: string;
  details?: Record<string, unknown>;
}

/** A message as the stream and the history give it. */
export interface Message {
  message_id: string;
  conversation_id: string;
  sequence_number: number;
  from_user_id: string;
  payload: Payload;
  created_at: string;
  target_channels?: string[] | null;
  /** recipient -> channel -> state; in the history and GET /v1/messages/{id}, not on the stream. */
  channel_delivery?: Record<string, Record<string, ChannelState>>;
  status_history?: { status: string; at: string; recipient_id?: string; channel?: string }[];
}

export interface StatusFrame {
  message_id: string;
  conversation_id: string;
  recipient_id: string;
  channel: string;
  status: DeliveryStatus;
  at: string;
}

export interface TypingFrame {
  conversation_id: string;
  user_id: string;
  expires_in: number;
}

export interface Presence {
  user_id: string;
  online: boolean;
  last_seen: string | null;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface LinkedChannel {
  channel_type: string;
  channel_user_id: string;
}

import { DeliveryStatus, Member, Message } from './models';

/** Statuses only move forward; `failed` ranks below `sent` so any success shows instead. */
const RANK: Record<DeliveryStatus, number> = { failed: 0, sent: 1, delivered: 2, read: 3 };

export function later(a: DeliveryStatus | undefined, b: DeliveryStatus): DeliveryStatus {
  return a !== undefined && RANK[a] >= RANK[b] ? a : b;
}

/** Per recipient, the furthest status over their channels, from `channel_delivery`. */
export function receiptsOf(message: Message): Record<string, DeliveryStatus> {
  const receipts: Record<string, DeliveryStatus> = {};
  for (const [recipient, channels] of Object.entries(message.channel_delivery ?? {})) {
    for (const state of Object.values(channels)) {
      receipts[recipient] = later(receipts[recipient], state.status);
    }
  }
  return receipts;
}

/**
 * What each other member has of one of my messages: the message's own receipts, raised by the
 * member's watermarks (reading up to a number reads everything before it).
 */
export function marksFor(
  message: Message,
  receipts: Record<string, DeliveryStatus>,
  members: Member[],
): Record<string, DeliveryStatus> {
  const marks: Record<string, DeliveryStatus> = {};
  for (const member of members) {
    if (member.user_id === message.from_user_id) continue;
    let status = receipts[member.user_id] ?? 'sent';
    if (member.last_delivered_sequence_number >= message.sequence_number) {
      status = later(status, 'delivered');
    }
    if (member.last_read_sequence_number >= message.sequence_number) {
      status = later(status, 'read');
    }
    marks[member.user_id] = status;
  }
  return marks;
}

/** The mark a message shows overall: what every recipient has reached. */
export function overall(marks: Record<string, DeliveryStatus>): DeliveryStatus {
  const all = Object.values(marks);
  if (all.length === 0) return 'sent';
  return all.reduce((low, s) => (RANK[s] < RANK[low] ? s : low));
}

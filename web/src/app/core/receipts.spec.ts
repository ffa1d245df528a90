import { Member, Message } from './models';
import { marksFor, overall, receiptsOf } from './receipts';

const member = (user_id: string, delivered: number, read: number): Member => ({
  user_id,
  role: 'member',
  last_delivered_sequence_number: delivered,
  last_read_sequence_number: read,
});

const mine: Message = {
  message_id: 'm',
  conversation_id: 'c',
  sequence_number: 5,
  from_user_id: 'me',
  payload: { type: 'text', text: 'hi' },
  created_at: '2026-01-01T00:00:00Z',
  channel_delivery: {
    bob: {
      internal: { status: 'delivered', updated_at: '' },
      telegram: { status: 'failed', updated_at: '' },
    },
    carol: { internal: { status: 'sent', updated_at: '' } },
  },
};

describe('receipts', () => {
  it('takes the furthest status over a recipient’s channels', () => {
    expect(receiptsOf(mine)).toEqual({ bob: 'delivered', carol: 'sent' });
  });

  it('raises a mark by the member’s watermarks, never lowers it', () => {
    const members = [member('me', 5, 5), member('bob', 5, 5), member('carol', 4, 0)];
    expect(marksFor(mine, receiptsOf(mine), members)).toEqual({ bob: 'read', carol: 'sent' });
    const late = [member('bob', 0, 0), member('carol', 0, 0)];
    expect(marksFor(mine, { bob: 'read' }, late)).toEqual({ bob: 'read', carol: 'sent' });
  });

  it('shows overall what every recipient has reached', () => {
    expect(overall({ bob: 'read', carol: 'delivered' })).toBe('delivered');
    expect(overall({ bob: 'read' })).toBe('read');
    expect(overall({})).toBe('sent');
  });
});

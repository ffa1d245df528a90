from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from chat4all.domain.errors import InvalidInput
from chat4all.domain.events import Event, message_sent
from chat4all.domain.messages import Message, NewMessage, Payload, PayloadType, StatusChange
from chat4all.domain.status import DeliveryStatus as S

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def new_message(recipients=2, text="hello", channels=("internal",)):
    return NewMessage(
        message_id=uuid4(),
        conversation_id=uuid4(),
        from_user_id=uuid4(),
        to_user_ids=tuple(uuid4() for _ in range(recipients)),
        payload=Payload(PayloadType.TEXT, text),
        target_channels=channels,
    )


def change(message, recipient, status, at=T0, channel="internal"):
    return StatusChange(message.message_id, message.conversation_id, recipient, channel, status, at)


def test_stored_message_starts_sent_for_every_recipient_and_channel():
    new = new_message(recipients=2, channels=("internal", "whatsapp"))
    m = new.stored(7, T0, timedelta(days=30))
    assert m.sequence_number == 7
    assert m.status is S.SENT
    assert m.ttl_expire_at == T0 + timedelta(days=30)
    assert set(m.channel_delivery) == {str(u) for u in new.to_user_ids}
    for channels in m.channel_delivery.values():
        assert {c: d.status for c, d in channels.items()} == {
            "internal": S.SENT,
            "whatsapp": S.SENT,
        }


def test_apply_moves_status_forward_and_records_history():
    new = new_message(recipients=2)
    m = new.stored(1, T0, None)
    a, b = new.to_user_ids
    m1 = m.apply(change(m, a, S.DELIVERED, T0 + timedelta(seconds=1)))
    assert m1 is not None
    assert m1.recipient_status(a) is S.DELIVERED
    assert m1.status is S.SENT  # b has not got it yet
    m2 = m1.apply(change(m, b, S.READ, T0 + timedelta(seconds=2)))
    assert m2 is not None and m2.status is S.DELIVERED
    assert [e["status"] for e in m2.status_history] == ["sent", "delivered", "read"]
    # late and repeated changes are not steps forward
    assert m2.apply(change(m, b, S.DELIVERED)) is None
    assert m2.apply(change(m, a, S.DELIVERED)) is None


def test_sender_and_strangers_are_not_recipients():
    new = new_message()
    m = new.stored(1, T0, None)
    assert m.apply(change(m, new.from_user_id, S.READ)) is None
    assert m.apply(change(m, uuid4(), S.READ)) is None


def test_document_round_trip():
    new = new_message(recipients=3, text="olá 👋")
    m = new.stored(3, T0, timedelta(days=1))
    m = m.apply(change(m, new.to_user_ids[0], S.READ, T0 + timedelta(minutes=1)))
    assert m is not None
    assert Message.from_document(m.to_document()) == m


def test_fingerprint_tells_bodies_apart():
    new = new_message()
    same = NewMessage(**{**new.__dict__})
    other = NewMessage(**{**new.__dict__, "payload": Payload(PayloadType.TEXT, "other")})
    assert new.fingerprint() == same.fingerprint()
    assert new.fingerprint() != other.fingerprint()


@pytest.mark.parametrize("text", ["", "   ", None, "x" * 11])
def test_text_payload_checks(text):
    with pytest.raises(InvalidInput):
        Payload(PayloadType.TEXT, text).check(max_text_length=10)


def test_file_payload_needs_a_file_id():
    with pytest.raises(InvalidInput):
        Payload(PayloadType.FILE).check(10)
    Payload(PayloadType.FILE, file_reference={"file_id": "x"}).check(10)


def test_event_round_trip_keeps_conversation_key():
    m = new_message().stored(1, T0, None)
    event = message_sent(m, None)
    assert event.key == str(m.conversation_id)
    assert Event.from_dict(event.to_dict()) == event
    assert Message.from_document(event.data) == m


def test_fingerprint_covers_metadata_and_channels():
    new = new_message()
    assert new.fingerprint() != NewMessage(**{**new.__dict__, "metadata": {"k": 1}}).fingerprint()
    assert (
        new.fingerprint()
        != NewMessage(**{**new.__dict__, "target_channels": ("internal", "whatsapp")}).fingerprint()
    )


def test_views_from_a_message_and_from_its_document_agree():
    from chat4all.services.frames import document_view, message_view

    m = new_message(recipients=2).stored(4, T0, None)
    doc = m.to_document()
    assert document_view(doc) == message_view(m, full=False)
    assert document_view(doc, full=True) == message_view(m)
    assert "channel_delivery" not in document_view(doc)

from chat4all.domain.status import DeliveryStatus as S
from chat4all.domain.status import aggregate, best_of, can_advance


def test_status_moves_forward_only():
    assert can_advance(None, S.SENT)
    assert can_advance(S.SENT, S.DELIVERED)
    assert can_advance(S.SENT, S.READ)
    assert can_advance(S.DELIVERED, S.READ)
    assert not can_advance(S.READ, S.DELIVERED)
    assert not can_advance(S.DELIVERED, S.DELIVERED)
    assert not can_advance(S.DELIVERED, S.SENT)


def test_failed_only_from_sent_and_is_final():
    assert can_advance(S.SENT, S.FAILED)
    assert not can_advance(S.DELIVERED, S.FAILED)
    assert not can_advance(S.READ, S.FAILED)
    for later in (S.SENT, S.DELIVERED, S.READ):
        assert not can_advance(S.FAILED, later)


def test_best_channel_wins_for_a_recipient():
    assert best_of([S.FAILED, S.DELIVERED, S.SENT]) is S.DELIVERED
    assert best_of([S.FAILED, S.FAILED]) is S.FAILED


def test_overall_status_is_what_every_recipient_reached():
    assert aggregate([S.READ, S.DELIVERED]) is S.DELIVERED
    assert aggregate([S.READ, S.READ]) is S.READ
    assert aggregate([S.READ, S.FAILED]) is S.READ
    assert aggregate([S.FAILED, S.FAILED]) is S.FAILED
    assert aggregate([]) is S.SENT

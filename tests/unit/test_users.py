import pytest

from chat4all.domain.errors import InvalidInput
from chat4all.domain.users import MAX_EMAIL_LENGTH, check_email


def test_email_is_lowered():
    assert check_email("Ana.Silva@Example.COM") == "ana.silva@example.com"


@pytest.mark.parametrize(
    "email",
    [
        "no-at-sign.example.com",
        "two@@example.com",
        "space in@example.com",
        "nul\x00byte@example.com",
        "bell@exa\x07mple.com",
        "a" * 64 + "@" + "b" * 180 + ".example.org",  # 257 characters
    ],
)
def test_emails_no_store_could_keep_are_refused(email):
    with pytest.raises(InvalidInput):
        check_email(email)


def test_longest_email_is_accepted():
    email = "a" * 64 + "@" + "b" * (MAX_EMAIL_LENGTH - 64 - 1 - 4) + ".org"
    assert len(email) == MAX_EMAIL_LENGTH
    assert check_email(email) == email

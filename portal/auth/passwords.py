"""argon2id password hashing (argon2-cffi)."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters

MIN_LENGTH = 10


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(user, password: str) -> bool:
    """Check ``password``; upgrade the stored hash when the parameters have changed."""
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return True


# A hash to verify against when the username does not exist, so that the
# response time does not tell which usernames exist.
DUMMY_HASH = _hasher.hash("not-a-real-password")


def burn_time(password: str) -> None:
    try:
        _hasher.verify(DUMMY_HASH, password)
    except VerificationError:
        pass

"""Password hashing, signed tokens and opaque secrets."""

from copilot.security.passwords import PasswordHasher
from copilot.security.secrets import hash_secret, new_secret
from copilot.security.tokens import TokenClaims, TokenError, TokenIssuer

__all__ = ["PasswordHasher", "TokenClaims", "TokenError", "TokenIssuer", "hash_secret", "new_secret"]

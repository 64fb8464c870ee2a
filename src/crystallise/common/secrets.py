"""Encrypting a per-request OpenAI key at rest with the server secret (Fernet, AES + HMAC)."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken


class SecretBox:
    """Encrypts short secrets with a key derived from ``CRYSTALLISE_SECRET_KEY``."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("an empty secret cannot encrypt")
        digest = hashlib.sha256(b"crystallise-request-key\x00" + secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str | None:
        """The plaintext, or None if the token was made with another secret."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            return None

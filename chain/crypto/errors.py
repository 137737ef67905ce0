"""Errors of the national-crypto layer.

Each failure mode has its own class so that callers (and tests) can tell a malformed
signature from a forged one, a truncated ciphertext from a wrong password.  Every class
derives from :class:`CryptoError`, itself a :class:`chain.errors.ChainError`.
"""

from __future__ import annotations

from chain.errors import (
    BackendError as BackendError,
)
from chain.errors import (
    CiphertextFormatError as CiphertextFormatError,
)
from chain.errors import (  # the crypto family lives with every other chain error
    CryptoError as CryptoError,
)
from chain.errors import (
    DecryptionError as DecryptionError,
)
from chain.errors import (
    InvalidSignature as InvalidSignature,
)
from chain.errors import (
    KeyFileError as KeyFileError,
)
from chain.errors import (
    KeyFormatError as KeyFormatError,
)
from chain.errors import (
    SignatureFormatError as SignatureFormatError,
)
from chain.errors import (
    WrongKeyTypeError as WrongKeyTypeError,
)
from chain.errors import (
    WrongKindError as WrongKindError,
)
from chain.errors import (
    WrongPasswordError as WrongPasswordError,
)

"""National cryptography (国密) for Rongxin: SM2, SM3 and SM4 behind one interface.

=========  =====================================================  ==========================
need       functions                                              backend
=========  =====================================================  ==========================
SM3        :func:`sm3`, :class:`SM3`, :func:`sm3_file`,           OpenSSL (hashlib, or
           :func:`hmac_sm3`, :func:`sm3_kdf`                       ``cryptography``)
SM4        :func:`sm4.seal` / :func:`sm4.open_sealed`,             OpenSSL via
           :func:`sm4.encrypt_file` / :func:`sm4.decrypt_file`     ``cryptography``
SM2        :class:`PrivateKey`, :class:`PublicKey`,                system OpenSSL 3
           :func:`sign`, :func:`verify`, :func:`encrypt`,          (``libcrypto.so.3``)
           :func:`decrypt`
key files  :func:`save_private_key`, :func:`load_private_key`      scrypt + SM4-GCM
sealed     :func:`seal` / :func:`open_sealed` (any secret, by      scrypt + SM4-GCM
           kind), :func:`atomic_write`
=========  =====================================================  ==========================

Every error is a :class:`CryptoError` subclass (see :mod:`chain.crypto.errors`).

Examples
--------
>>> from chain import crypto
>>> key = crypto.PrivateKey.generate()
>>> sig = crypto.sign(key, b"anchor this")
>>> crypto.verify(key.public_key, b"anchor this", sig)
>>> crypto.sm3(b"abc").hex()[:8]
'66c7f0f4'
"""

from chain.crypto import sm4
from chain.crypto.atomic import atomic_write
from chain.crypto.errors import (
    BackendError,
    CiphertextFormatError,
    CryptoError,
    DecryptionError,
    InvalidSignature,
    KeyFileError,
    KeyFormatError,
    SignatureFormatError,
    WrongKeyTypeError,
    WrongKindError,
    WrongPasswordError,
)
from chain.crypto.keyfile import (
    decrypt_private_key,
    encrypt_private_key,
    load_private_key,
    save_private_key,
)
from chain.crypto.sealed import open_sealed, seal
from chain.crypto.sm2 import (
    DEFAULT_USER_ID,
    SM2_CURVE,
    Curve,
    PrivateKey,
    PublicKey,
    decrypt,
    encrypt,
    sign,
    verify,
    verify_many,
    z_value,
)
from chain.crypto.sm3 import SM3, hmac_sm3, hmac_sm3_verify, sm3, sm3_file, sm3_kdf, sm3_stream

__all__ = [
    "DEFAULT_USER_ID",
    "SM2_CURVE",
    "SM3",
    "BackendError",
    "CiphertextFormatError",
    "CryptoError",
    "Curve",
    "DecryptionError",
    "InvalidSignature",
    "KeyFileError",
    "KeyFormatError",
    "PrivateKey",
    "PublicKey",
    "SignatureFormatError",
    "WrongKeyTypeError",
    "WrongKindError",
    "WrongPasswordError",
    "atomic_write",
    "decrypt",
    "decrypt_private_key",
    "encrypt",
    "encrypt_private_key",
    "hmac_sm3",
    "hmac_sm3_verify",
    "load_private_key",
    "open_sealed",
    "save_private_key",
    "seal",
    "sign",
    "sm3",
    "sm3_file",
    "sm3_kdf",
    "sm3_stream",
    "sm4",
    "verify",
    "verify_many",
    "z_value",
]

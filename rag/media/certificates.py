"""Who signs content credentials: an organisation's certificate and key, or a local pair this app makes.

C2PA signs with an X.509 certificate that a CA issued: c2pa refuses a self-signed signer ("the certificate
was self-signed") and one without an accepted extended key usage ("the certificate is invalid"), both seen
with c2pa-python 0.38.1 on 2026-12-07. The accepted EKUs are the SDK's list (emailProtection, documentSigning,
...: https://docs.rs/crate/c2pa/latest/source/src/crypto/cose/valid_eku_oids.cfg, checked 2026-12-07).
Without an organisation's certificate the app makes its own small CA and signer (ES256 on P-256) in
``$BANANA_DATA_DIR/credentials`` on first start. Validators show that signer as untrusted: it proves a file
has not changed since it was signed, not who signed it.

The private key is read here and handed to c2pa only: :class:`SigningKey` keeps it out of ``repr``, and no
message, log line or record carries it. The cryptography package makes and checks the certificates.
"""

from __future__ import annotations

import datetime
import logging
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from rag.core import ConfigError, Settings, atomic_write, os_error_text

log = logging.getLogger(__name__)

CERT_FILE, KEY_FILE = "cert.pem", "key.pem"
LOCAL_NAME = "Banana Studio local signer"
LOCAL_YEARS = 10
# c2pa-python's C2paSigningAlg names (c2pa/c2pa.py in 0.38.1): es256, es384, es512, ps256, ps384, ps512, ed25519.
ALGORITHMS = ("es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519")


@dataclass(frozen=True)
class SigningKey:
    """A certificate chain (PEM, signer first) and its private key, ready for c2pa; ``local`` when the app
    made it. ``key`` stays out of ``repr``, so printing or logging one never shows it."""

    chain: bytes
    key: bytes = field(repr=False)
    alg: str
    local: bool
    subject: str
    serial: str


def credentials_dir(settings: Settings) -> Path:
    """Where the local certificate lives; never one of the folders the web app serves."""
    return Path(settings.data_dir) / "credentials"


def signing_key(settings: Settings) -> SigningKey | None:
    """The key the app signs with (None when content credentials are off): the configured certificate, else
    the local one, made on first use. A bad certificate is a :class:`ConfigError` naming its file."""
    if not settings.credentials:
        return None
    cert, key = settings.credentials_cert, settings.credentials_key
    if bool(cert) != bool(key):
        raise ConfigError("CREDENTIALS_CERT and CREDENTIALS_KEY go together: set both (a PEM certificate chain and "
                          "its private key), or neither for a certificate this app makes itself.")
    if cert and key:
        return load_signing_key(Path(cert), Path(key), settings.credentials_alg, local=False)
    cert, key = local_certificate(credentials_dir(settings))
    return load_signing_key(cert, key, "auto", local=True)


def local_certificate(folder: Path) -> tuple[Path, Path]:
    """``folder``'s certificate and key, made when it has none. Two processes starting at once make one pair:
    each writes a folder of its own and renames it into place, and the loser's rename fails."""
    cert, key = folder / CERT_FILE, folder / KEY_FILE
    if cert.is_file() and key.is_file():
        return cert, key
    chain, private = _make_local_pair()
    staging = folder.with_name(f".{folder.name}-{secrets.token_hex(6)}")
    try:
        staging.mkdir(mode=0o700, parents=True)
        atomic_write(staging / KEY_FILE, private)
        os.chmod(staging / KEY_FILE, 0o600)
        atomic_write(staging / CERT_FILE, chain)
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # an empty folder left behind: rename replaces nothing else
        os.rename(staging, folder)
        log.info("made a local content credentials certificate in %s", folder)
    except OSError as exc:
        if not (cert.is_file() and key.is_file()):  # not another process's pair landing first: a real failure
            raise ConfigError(f"Could not make a certificate for content credentials in {folder} "
                              f"({os_error_text(exc)}).") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return cert, key


def _make_local_pair() -> tuple[bytes, bytes]:
    """A CA and an end-entity signer (ES256, P-256) it issued: what c2pa accepts (a CA-issued signer, key usage
    digitalSignature, EKU emailProtection). Returns (chain PEM, signer first; signer key PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Banana Studio"),
                          x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def usage(*, sign: bool, certs: bool) -> x509.KeyUsage:
        return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=certs, crl_sign=certs,
                             encipher_only=False, decipher_only=False)

    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=365 * LOCAL_YEARS)
    ca_key, signer_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("Banana Studio local CA")).issuer_name(name("Banana Studio local CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number()).not_valid_before(start)
          .not_valid_after(end).add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(usage(sign=False, certs=True), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    signer = (x509.CertificateBuilder().subject_name(name(LOCAL_NAME)).issuer_name(ca.subject)
              .public_key(signer_key.public_key()).serial_number(x509.random_serial_number()).not_valid_before(start)
              .not_valid_after(end).add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(usage(sign=True, certs=False), critical=True)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(signer_key.public_key()), critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    chain = signer.public_bytes(pem) + ca.public_bytes(pem)
    key = signer_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return chain, key


def load_signing_key(cert: Path, key: Path, alg: str, *, local: bool) -> SigningKey:
    """Read and check a certificate chain and its key; every problem is one sentence naming the file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    chain, private = _read(cert, "certificate"), _read(key, "key")
    try:
        certs = x509.load_pem_x509_certificates(chain)
    except ValueError:
        raise ConfigError(f"The content credentials certificate {cert} is not a PEM certificate chain.") from None
    try:
        secret = serialization.load_pem_private_key(private, password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"The content credentials key {key} is not an unencrypted PEM private key.") from None
    pem, spki = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    if secret.public_key().public_bytes(pem, spki) != certs[0].public_key().public_bytes(pem, spki):
        raise ConfigError(f"The key {key} does not belong to the certificate {cert} (the signer's certificate "
                          "must come first in the file).")
    if certs[0].not_valid_after_utc <= datetime.datetime.now(datetime.UTC):
        raise ConfigError(f"The content credentials certificate {cert} expired on "
                          f"{certs[0].not_valid_after_utc:%Y-%m-%d}.")
    chosen = _algorithm(secret, alg, key)
    subject = ", ".join(a.value for a in certs[0].subject if isinstance(a.value, str)) or "(no name)"
    return SigningKey(chain=chain, key=private, alg=chosen, local=local, subject=subject, serial=str(certs[0].serial_number))


def _read(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"The content credentials {what} {path} cannot be read ({os_error_text(exc)}).") from None
    if not data.strip() or len(data) > 1_000_000:
        raise ConfigError(f"The content credentials {what} {path} is empty or not a PEM file.")
    return data


def _algorithm(secret: object, alg: str, key: Path) -> str:
    """The c2pa algorithm for the key: ``auto`` reads it from the key's type; a named one must fit it."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(secret, ec.EllipticCurvePrivateKey):
        fits = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}.get(secret.curve.name, "")
        allowed = (fits,) if fits else ()
    elif isinstance(secret, rsa.RSAPrivateKey):
        allowed = ("ps256", "ps384", "ps512")
    elif isinstance(secret, ed25519.Ed25519PrivateKey):
        allowed = ("ed25519",)
    else:
        allowed = ()
    if not allowed:
        raise ConfigError(f"The content credentials key {key} is of a kind C2PA cannot sign with "
                          "(use EC P-256, P-384 or P-521, RSA, or Ed25519).")
    if alg in ("", "auto"):
        return allowed[0]
    if alg not in ALGORITHMS:
        raise ConfigError(f"CREDENTIALS_ALG must be auto or one of {', '.join(ALGORITHMS)}, got {alg!r}.")
    if alg not in allowed:
        raise ConfigError(f"CREDENTIALS_ALG is {alg}, which does not fit the key {key} ({' or '.join(allowed)} does).")
    return alg

"""Certification evidence: a signed, self-checking bundle built from one run's results.json.

A bundle is a directory::

    results.json       the run's results, byte for byte
    report.html, ...   any artefacts given (copied under their file names)
    manifest.json      what the bundle holds, signed
    manifest.sig       base64 Ed25519 signature over the exact bytes of manifest.json

``manifest.json`` is canonical JSON (sorted keys, no whitespace, ASCII) holding ``bundle_version``,
``suite_version``, ``results_version``, ``vector_set_digest`` and ``certification`` (both from
results.json), the target fingerprint, ``created`` (ISO 8601 UTC), ``files`` (name → SHA-256 hex of
every file except the manifest and its signature), ``signature_algorithm`` (``ed25519``) and
``certifier_public_key`` (base64 of the raw 32-byte Ed25519 public key).

:func:`verify_bundle` works offline: it checks the signature over the manifest bytes, every listed
file's digest, that nothing unlisted is present, that results.json agrees with the manifest and that its
stored certification is what its checks give. Without a pinned key (``expected_public_key`` or
``trusted_public_keys``) the signature only proves the bundle is intact, not who certified it: anyone can
flip every outcome to pass and re-sign a bundle with a key of their own. Such an outcome is ``ok`` but not
``certified``, and ``verify-report`` exits 1 for it ("integrity only, signer not pinned").

:func:`certify` refuses a results file whose stored ``certification`` disagrees with its checks, so a
signed bundle never says ``MUST pass`` over a MUST failure.

Signing keys are a 32-byte raw seed file, a file holding the base64 of a 32-byte seed, or an
unencrypted PKCS8 PEM (``-----BEGIN PRIVATE KEY-----``); :func:`generate_key` writes the latter.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..textsafe import one_line
from .baseline import ResultsError, checks_by_id

BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
RESULTS = "results.json"
SIGNATURE_ALGORITHM = "ed25519"
TARGET_FIELDS = ("url", "node_public_key", "signer_address", "signature_scheme", "detected_profile", "profile")

_MAX_KEY_FILE = 64 * 1024
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_PEM_HEADER = re.compile(rb"-----BEGIN ([A-Z0-9]{1,20}(?: [A-Z0-9]{1,20}){0,4})-----")
"""A PEM header whose label is short uppercase words: the only kind quoted back in an error."""
_CREATED = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
CERTIFICATION_LEVELS = ("MUST", "SHOULD", "INFO")
_FAILED = ("fail", "error")

SigningKey = bytes | str | os.PathLike[str] | Ed25519PrivateKey
"""A signing key: raw key material as bytes (a 32-byte seed, base64 seed or PEM), a path to a key file
(str or Path), or a loaded key."""


class CertifyError(Exception):
    """A bundle could not be made; the message is one line and names the file at fault.

    ``option`` is the command-line option that file came from (``--results``, ``--artefact``,
    ``--out``, ``--key``), so the CLI can name the field without parsing the message."""

    default_option: str | None = None

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option if option is not None else self.default_option


class SigningKeyError(CertifyError):
    """The signing key could not be loaded; the message names the file, never the key material."""

    default_option = "--key"


class BundleError(Exception):
    """A bundle that cannot be read at all (no such directory, permission denied)."""


# --- keys -----------------------------------------------------------------------------------------


def load_signing_key(source: SigningKey) -> Ed25519PrivateKey:
    """Load an Ed25519 private key from a key file path, key bytes or a key object (see the module doc)."""
    if isinstance(source, Ed25519PrivateKey):
        return source
    if isinstance(source, bytes):
        return _parse_key(source, "<key bytes>")
    path = Path(source)
    try:
        # O_NONBLOCK: a FIFO named as the key must be refused, not waited on for ever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise SigningKeyError(f"{path}: no such key file") from None
    except IsADirectoryError:
        raise SigningKeyError(f"{path}: is a directory, not a key file") from None
    except NotADirectoryError:
        raise SigningKeyError(f"{path}: no such key file (a part of the path is a file)") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        raise SigningKeyError(f"{path}: cannot read the key file ({getattr(exc, 'strerror', None) or exc})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):  # before fdopen, which refuses a directory with an error of its own
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise SigningKeyError(f"{path}: is a directory, not a key file")
        raise SigningKeyError(f"{path}: not a regular file (a pipe or a device), not a key file")
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > _MAX_KEY_FILE:
            raise SigningKeyError(f"{path}: {info.st_size} bytes, too large to be an Ed25519 key file")
        try:
            data = handle.read(_MAX_KEY_FILE + 1)
        except OSError as exc:
            raise SigningKeyError(f"{path}: cannot read the key file ({exc.strerror or exc})") from None
    if not data:
        raise SigningKeyError(f"{path}: empty, not an Ed25519 key file")
    return _parse_key(data, str(path))


def _parse_key(data: bytes, name: str) -> Ed25519PrivateKey:
    expected = "expected a 32-byte raw seed, the base64 of a 32-byte seed, or a PKCS8 PEM (BEGIN PRIVATE KEY)"
    if len(data) == 32:
        if all(0x20 <= b < 0x7F for b in data):
            raise SigningKeyError(f"{name}: 32 bytes of printable text, not a raw Ed25519 seed; {expected}")
        return Ed25519PrivateKey.from_private_bytes(data)
    stripped = data.strip()
    first_line = stripped.split(b"\n", 1)[0].rstrip(b"\r")
    if stripped.startswith(b"-") or b"BEGIN" in first_line:
        # Only a header that matches exactly is ever quoted: anything looser (a dash short, a missing
        # line break) would quote the key body, seed included, as "the label".
        header = _PEM_HEADER.fullmatch(first_line)
        if header is None:
            raise SigningKeyError(f"{name}: a malformed PEM header; {expected}")
        label = header.group(1).decode("ascii")
        if label == "ENCRYPTED PRIVATE KEY":
            raise SigningKeyError(f"{name}: an encrypted PEM key; decrypt it first (PKCS8, no passphrase)")
        if label != "PRIVATE KEY":
            raise SigningKeyError(f"{name}: a PEM {label!r}, not a PKCS8 private key; {expected}")
        try:
            key = serialization.load_pem_private_key(stripped, password=None)
        except (ValueError, TypeError):
            raise SigningKeyError(f"{name}: a malformed PKCS8 PEM private key") from None
        except Exception:  # an unsupported algorithm, reported by the backend
            raise SigningKeyError(f"{name}: a PKCS8 PEM the crypto backend cannot load") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(f"{name}: a PKCS8 {type(key).__name__.removesuffix('PrivateKey')} key, not Ed25519")
        return key
    try:
        text = stripped.decode("ascii")
        seed = base64.b64decode(text, validate=True)
    except (UnicodeDecodeError, binascii.Error):
        raise SigningKeyError(f"{name}: not an Ed25519 private key ({len(data)} bytes); {expected}") from None
    if len(seed) != 32:
        raise SigningKeyError(f"{name}: base64 of {len(seed)} bytes, not of a 32-byte Ed25519 seed; {expected}")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_b64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """Base64 of the raw 32-byte public key (of a private key's public half)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def generate_key(path: Path | str) -> str:
    """Write a new Ed25519 private key to ``path`` as an unencrypted PKCS8 PEM, mode 0600, refusing to
    overwrite an existing file; returns the public key (base64 of its raw 32 bytes)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SigningKeyError(f"{path}: already exists; not overwriting a key file") from None
    except OSError as exc:
        raise SigningKeyError(f"{path}: cannot create the key file ({exc.strerror or exc})") from None
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)  # the umask may have narrowed it further, never widened
        handle.write(pem)
    return public_key_b64(key)


def _decode_b64(text: Any, size: int) -> bytes | None:
    """Bytes of canonical base64 ``text`` of exactly ``size`` bytes, else None."""
    if not isinstance(text, str):
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != size or base64.b64encode(raw).decode() != text:
        return None
    return raw


# --- making a bundle ------------------------------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """The signed serialization: sorted keys, no whitespace, ASCII only."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def certify(
    results_path: Path,
    out_dir: Path,
    signing_key: SigningKey,
    *,
    artefacts: Sequence[Path] = (),
    created: datetime.datetime | None = None,
) -> Path:
    """Write a signed bundle of ``results_path`` (and ``artefacts``) into ``out_dir``, which must not
    exist or be empty; returns ``out_dir``. Everything is checked before anything is written."""
    results_path, out_dir = Path(results_path), Path(out_dir)
    key = load_signing_key(signing_key)
    results_bytes = _read_input(results_path, "results", "--results")
    try:
        results = json.loads(results_bytes.decode("utf-8"))
        checks_by_id(results)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CertifyError(f"{results_path}: not a JSON results file ({exc})", "--results") from None
    except ResultsError as exc:
        raise CertifyError(f"{results_path}: {exc}", "--results") from None
    if not isinstance(results.get("certification"), dict):
        raise CertifyError(f"{results_path}: no 'certification' verdicts (written by an older suite?)", "--results")
    if results.get("incomplete", False) is not False:
        raise CertifyError(f"{results_path}: an interrupted run (incomplete); certify a complete one", "--results")
    if results.get("stopped_early"):
        raise CertifyError(
            f"{results_path}: a run the run guard stopped before it was done (stopped_early); certify a complete one",
            "--results",
        )
    options = results.get("options")
    if isinstance(options, dict) and options.get("trust_test_ca") is True:
        raise CertifyError(
            f"{results_path}: a run with --trust-test-ca (its KEY checks trusted the mock's test CA); certify a run "
            "that trusts NVIDIA's root alone",
            "--results",
        )
    disagreement = certification_disagreement(results)
    if disagreement:
        raise CertifyError(f"{results_path}: {disagreement}", "--results")

    files: dict[str, bytes] = {RESULTS: results_bytes}
    for artefact in artefacts:
        artefact = Path(artefact)
        name = artefact.name
        if name in (MANIFEST, SIGNATURE, RESULTS):
            raise CertifyError(f"{artefact}: the name {name!r} is reserved in a bundle", "--artefact")
        if not _SAFE_NAME.fullmatch(name):
            raise CertifyError(
                f"{artefact}: file name {name!r} not allowed (letters, digits, '.', '_', '-')", "--artefact"
            )
        if name in files:
            raise CertifyError(f"{artefact}: a second artefact named {name!r}", "--artefact")
        files[name] = _read_input(artefact, "artefact", "--artefact")

    if out_dir.exists():
        if not out_dir.is_dir():
            raise CertifyError(f"{out_dir}: exists and is not a directory", "--out")
        if any(out_dir.iterdir()):
            raise CertifyError(f"{out_dir}: not empty; a bundle is written into a new or empty directory", "--out")

    target = results.get("target") if isinstance(results.get("target"), dict) else {}
    when = (created or datetime.datetime.now(datetime.UTC)).astimezone(datetime.UTC)
    manifest = {
        "bundle_version": BUNDLE_VERSION,
        "suite_version": results.get("suite_version"),
        "results_version": results.get("results_version"),
        "vector_set_digest": results.get("vector_set_digest"),
        "certification": results["certification"],
        "target": {name: target.get(name) for name in TARGET_FIELDS},
        "created": when.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
        "signature_algorithm": SIGNATURE_ALGORITHM,
        "certifier_public_key": public_key_b64(key),
    }
    manifest_bytes = canonical_json(manifest)
    signature = base64.b64encode(key.sign(manifest_bytes))

    from ..exits import UserError
    from ..paths import write_atomic

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        # Each file new and renamed into place: nothing in the bundle is replaced or written through a link.
        for name, data in {**files, MANIFEST: manifest_bytes, SIGNATURE: signature}.items():
            write_atomic(out_dir / name, data, "--out", exclusive=True)
    except OSError as exc:
        raise CertifyError(f"{out_dir}: cannot write the bundle ({exc.strerror or exc})", "--out") from None
    except UserError as exc:
        raise CertifyError(exc.reason, "--out") from None
    return out_dir


def recomputed_certification(results: Mapping[str, Any]) -> dict[str, str]:
    """The verdict per level as the checks give it (conformance.results.Results.certification's rule):
    a level fails when one of its checks failed or errored; INFO never fails."""
    checks = checks_by_id(results).values()
    out = {
        level: "fail" if any(c["level"] == level and c["outcome"] in _FAILED for c in checks) else "pass"
        for level in ("MUST", "SHOULD")
    }
    out["INFO"] = "pass"
    return out


def certification_disagreement(results: Mapping[str, Any]) -> str | None:
    """Why the stored ``certification`` is not what the checks give, or None when they agree.

    Why: the manifest carries the stored verdict, so a results file edited to say ``MUST pass`` over
    eight MUST failures would otherwise be signed as a pass.
    """
    stored = results.get("certification")
    computed = recomputed_certification(results)
    if stored == computed:
        return None
    if not _certification_shape(stored):
        return "'certification' is not an object of MUST (and SHOULD, INFO) verdicts, each pass or fail"
    assert isinstance(stored, Mapping)
    for level in CERTIFICATION_LEVELS:
        if level in stored and stored[level] != computed[level]:
            failed = sum(1 for c in checks_by_id(results).values() if c["level"] == level and c["outcome"] in _FAILED)
            claimed = one_line(stored.get(level), 20)
            return (
                f"'certification' says {level} {claimed} but its checks give {level} {computed[level]} "
                f"({failed} {level} check(s) failed or errored); the file was edited or is damaged"
            )
    return None  # a subset of the levels (an older writer), each as its checks give it


def _certification_shape(value: Any) -> bool:
    """An object holding MUST and perhaps SHOULD and INFO, each "pass" or "fail": all a verdict prints."""
    return (
        isinstance(value, Mapping)
        and "MUST" in value
        and set(value) <= set(CERTIFICATION_LEVELS)
        and all(verdict in ("pass", "fail") for verdict in value.values())
    )


def _read_input(path: Path, what: str, option: str | None = None) -> bytes:
    try:
        if not path.is_file():
            problem = f"{path}: no such {what} file" if not path.exists() else f"{path}: not a regular file"
            raise CertifyError(problem, option)
        with path.open("rb") as handle:  # a regular file (checked above): it cannot block like a FIFO
            return handle.read()
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        raise CertifyError(
            f"{path}: cannot read the {what} file ({getattr(exc, 'strerror', None) or exc})", option
        ) from None


# --- verifying a bundle ---------------------------------------------------------------------------


@dataclass
class VerifyOutcome:
    ok: bool
    """The bundle is intact and consistent (and, when keys were pinned, signed by one of them).
    Alone it says nothing about who signed: see :attr:`certified`."""
    problems: list[str] = field(default_factory=list)
    """Everything wrong with the bundle, one line each; empty exactly when ``ok``."""
    warnings: list[str] = field(default_factory=list)
    """Not wrong, but worth knowing (no key was pinned)."""
    public_key: str | None = None
    """The certifier key the manifest names (base64), when readable."""
    manifest: dict[str, Any] | None = None
    """The parsed manifest, when readable (trust it only when :attr:`certified`)."""
    pinned: bool = False
    """The signer was checked against a key the caller trusts (``expected_public_key`` or
    ``trusted_public_keys``)."""

    @property
    def certified(self) -> bool:
        """Intact and signed by a pinned key: the only state in which the manifest's claims count.

        Why not ``ok``: anyone can flip every outcome to pass and re-sign a bundle with a key of their
        own; such a bundle is intact, and only a pinned key tells it from the certifier's."""
        return self.ok and self.pinned


def verify_bundle(
    bundle_dir: Path, *, expected_public_key: str | None = None, trusted_public_keys: Sequence[str] = ()
) -> VerifyOutcome:
    """Check a bundle offline. Tampering is reported in ``problems`` (never raised); :class:`BundleError`
    only when the bundle cannot be read at all, ValueError when a given public key is malformed.

    The signer must be ``expected_public_key`` or one of ``trusted_public_keys`` when either is given;
    with neither, the outcome is at best intact but not :attr:`~VerifyOutcome.certified`."""
    bundle_dir = Path(bundle_dir)
    expected_raw: bytes | None = None
    if expected_public_key is not None:
        expected_raw = _decode_b64(expected_public_key.strip(), 32)
        if expected_raw is None:
            raise ValueError("expected_public_key: not the base64 of a 32-byte Ed25519 public key")
    trusted: set[bytes] = set()
    for index, text in enumerate(trusted_public_keys):
        raw = _decode_b64(text.strip(), 32)
        if raw is None:
            raise ValueError(f"trusted_public_keys[{index}]: not the base64 of a 32-byte Ed25519 public key")
        trusted.add(raw)
    if not bundle_dir.is_dir():
        raise BundleError(f"{bundle_dir}: {'not a directory' if bundle_dir.exists() else 'no such bundle directory'}")
    try:
        present = {entry.name: entry for entry in os.scandir(bundle_dir)}
    except OSError as exc:
        raise BundleError(f"{bundle_dir}: cannot list the bundle ({exc.strerror or exc})") from None

    out = VerifyOutcome(ok=False, pinned=expected_raw is not None or bool(trusted))
    problems = out.problems

    manifest_bytes = _read_member(bundle_dir, MANIFEST, present, problems)
    signature_bytes = _read_member(bundle_dir, SIGNATURE, present, problems)

    manifest: dict[str, Any] | None = None
    if manifest_bytes is not None:
        try:
            parsed = json.loads(manifest_bytes.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            problems.append(f"{MANIFEST}: not JSON")
        else:
            if isinstance(parsed, dict):
                manifest = parsed
                out.manifest = manifest
            else:
                problems.append(f"{MANIFEST}: not a JSON object")

    # The signature: over the exact manifest bytes, with the pinned key when one is given.
    named_raw = _decode_b64(manifest.get("certifier_public_key"), 32) if manifest else None
    if manifest is not None:
        if named_raw is None:
            problems.append(f"{MANIFEST}: certifier_public_key is not the base64 of a 32-byte Ed25519 key")
        else:
            out.public_key = manifest["certifier_public_key"]
    pinned_keys = trusted | ({expected_raw} if expected_raw is not None else set())
    verify_with = named_raw
    if pinned_keys and named_raw is not None and named_raw not in pinned_keys:
        if expected_raw is not None and not trusted:
            problems.append(f"{MANIFEST}: certified by {out.public_key}, not by the expected key {_b64(expected_raw)}")
            verify_with = expected_raw
        else:
            problems.append(f"{MANIFEST}: certified by {out.public_key}, which is not a pinned or trusted key")
    if not pinned_keys:
        out.warnings.append(
            "integrity only, signer not pinned: anyone can re-sign a changed bundle with a key of their own; "
            "pin the certifier with --public-key or --trust"
        )
    if manifest_bytes is not None and signature_bytes is not None and verify_with is not None:
        signature = _decode_b64(_ascii(signature_bytes), 64)
        if signature is None:
            problems.append(f"{SIGNATURE}: not the base64 of a 64-byte Ed25519 signature")
        else:
            try:
                Ed25519PublicKey.from_public_bytes(verify_with).verify(signature, manifest_bytes)
            except InvalidSignature:
                problems.append(f"{SIGNATURE}: the signature over {MANIFEST} does not verify")
            except ValueError:
                problems.append(f"{MANIFEST}: the certifier public key is not a valid Ed25519 key")

    if manifest is None:
        out.ok = False
        return out
    _check_manifest_fields(manifest, manifest_bytes, problems)

    # The files: each listed one present with its digest, nothing else present.
    listed = manifest.get("files")
    names: dict[str, str] = {}
    if not isinstance(listed, dict) or not listed:
        problems.append(f"{MANIFEST}: 'files' is not a non-empty object of name -> SHA-256")
    else:
        for name, digest in listed.items():
            if not _SAFE_NAME.fullmatch(name) or name in (MANIFEST, SIGNATURE):
                problems.append(f"{MANIFEST}: files lists a name not allowed in a bundle: {name!r}")
            elif not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
                problems.append(f"{MANIFEST}: files[{name!r}] is not a SHA-256 hex digest")
            else:
                names[name] = digest
    for name, digest in names.items():
        data = _read_member(bundle_dir, name, present, problems)
        if data is not None and hashlib.sha256(data).hexdigest() != digest:
            problems.append(f"{name}: SHA-256 differs from the manifest (the file was changed)")
    for name in sorted(present):
        if name not in (MANIFEST, SIGNATURE) and not (isinstance(listed, dict) and name in listed):
            problems.append(f"{name}: present in the bundle but not listed in the manifest")

    # results.json: listed, intact, and saying what the manifest says it says.
    if RESULTS not in names:
        if isinstance(listed, dict) and RESULTS not in listed:
            problems.append(f"{MANIFEST}: {RESULTS} is not listed")
    elif not any(p.startswith(f"{RESULTS}:") for p in problems):
        _check_results(bundle_dir / RESULTS, manifest, problems)

    out.ok = not problems
    return out


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _ascii(data: bytes) -> str | None:
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        return None


def _read_member(
    bundle_dir: Path, name: str, present: Mapping[str, os.DirEntry[str]], problems: list[str]
) -> bytes | None:
    entry = present.get(name)
    if entry is None:
        problems.append(f"{name}: missing from the bundle")
        return None
    if entry.is_symlink() or not entry.is_file(follow_symlinks=False):
        problems.append(f"{name}: not a regular file")
        return None
    try:
        return (bundle_dir / name).read_bytes()
    except OSError as exc:
        raise BundleError(f"{bundle_dir / name}: cannot be read ({exc.strerror or exc})") from None


def _check_manifest_fields(manifest: Mapping[str, Any], manifest_bytes: bytes | None, problems: list[str]) -> None:
    """Every field a verdict prints is checked for shape here, so that a signed manifest cannot carry an
    escape sequence or a megabyte into a terminal (the printer sanitises too: defence in depth)."""
    if manifest.get("bundle_version") != BUNDLE_VERSION:
        problems.append(
            f"{MANIFEST}: bundle_version {_quoted(manifest.get('bundle_version'))}, this suite reads {BUNDLE_VERSION}"
        )
    if manifest.get("signature_algorithm") != SIGNATURE_ALGORITHM:
        problems.append(
            f"{MANIFEST}: signature_algorithm {_quoted(manifest.get('signature_algorithm'))}, expected ed25519"
        )
    if not valid_created(manifest.get("created")):
        problems.append(f"{MANIFEST}: created is not an ISO 8601 UTC time (YYYY-MM-DDTHH:MM:SSZ)")
    if not _certification_shape(manifest.get("certification")):
        problems.append(f"{MANIFEST}: certification is not an object of MUST (and SHOULD, INFO), each pass or fail")
    target = manifest.get("target")
    if not isinstance(target, dict) or not all(value is None or isinstance(value, str) for value in target.values()):
        problems.append(f"{MANIFEST}: target is not an object of strings")
    try:
        canonical = canonical_json(manifest)
    except ValueError:
        canonical = b""
    if manifest_bytes is not None and canonical != manifest_bytes:
        problems.append(f"{MANIFEST}: not in canonical form (sorted keys, compact, ASCII)")


def _check_results(path: Path, manifest: Mapping[str, Any], problems: list[str]) -> None:
    try:
        results = json.loads(path.read_bytes().decode("utf-8"))
        checks_by_id(results)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ResultsError) as exc:
        problems.append(f"{RESULTS}: not a results document ({one_line(str(exc), 200)})")
        return
    except OSError as exc:
        raise BundleError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    disagreement = certification_disagreement(results)
    if disagreement:
        problems.append(f"{RESULTS}: {disagreement}")
    for name in ("suite_version", "results_version", "vector_set_digest", "certification"):
        if results.get(name) != manifest.get(name):
            problems.append(f"{RESULTS}: {name} differs from the manifest's")
    target = results.get("target") if isinstance(results.get("target"), dict) else {}
    claimed = manifest.get("target")
    if not isinstance(claimed, dict) or any(target.get(n) != claimed.get(n) for n in TARGET_FIELDS):
        problems.append(f"{RESULTS}: target differs from the manifest's")


def valid_created(value: Any) -> bool:
    """``YYYY-MM-DDTHH:MM:SSZ``, a real instant: the only ``created`` a verdict prints."""
    if not isinstance(value, str) or not _CREATED.fullmatch(value):
        return False
    try:
        datetime.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _quoted(value: Any) -> str:
    """A manifest value inside a problem line: repr'd, control characters escaped, length capped."""
    return one_line(repr(value), 80)


def format_verify(outcome: VerifyOutcome) -> str:
    """One verdict line, then the problems and warnings; every string a bundle controls is sanitised.

    An intact bundle whose signer nobody pinned is not called OK and its claimed certification is not
    shown: that claim is exactly what a forger re-signs."""
    manifest = outcome.manifest or {}
    files = manifest.get("files")
    count = len(files) if isinstance(files, dict) else 0
    signer = one_line(outcome.public_key, 60)
    if outcome.certified:
        cert = manifest.get("certification") or {}
        verdicts = ", ".join(f"{one_line(lv, 10)} {one_line(verdict, 10)}" for lv, verdict in sorted(cert.items()))
        lines = [
            f"bundle OK: {count} file(s) signed by the pinned key {signer} "
            f"on {one_line(manifest.get('created'), 30)}; certification: {verdicts}"
        ]
    elif outcome.ok:
        lines = [
            f"bundle NOT VERIFIED (integrity only, signer not pinned): {count} file(s) intact, signed by "
            f"{signer}; its certification is not shown"
        ]
    else:
        lines = [f"bundle NOT OK: {len(outcome.problems)} problem(s)"]
        lines += [f"  - {one_line(problem, 400)}" for problem in outcome.problems]
    lines += [f"  note: {one_line(warning, 400)}" for warning in outcome.warnings]
    return "\n".join(lines)

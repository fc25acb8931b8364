"""The proxy's hop, configured from the command line: the stack owner's key, the stack and the node key.

Shared by ``atoma-conformance run`` (which checks them before anything starts, so a bad file is one
line and exit 2) and the pytest plugin. Errors are ``ValueError`` naming the option, never the key.
"""

from __future__ import annotations

import json

from .client import NodeFace
from .protocol.b64 import b64decode_fixed
from .protocol.errors import ProtocolError
from .protocol.primitives import is_low_order
from .protocol.sui import Scheme, SuiSigner

MAX_KEY_FILE_BYTES = 64 * 1024


def load_signer(path: str) -> SuiSigner:
    """The stack owner's key from a file holding one Sui keystore entry (or a one-entry sui.keystore)."""
    from .exits import UserError
    from .paths import read_regular_file

    try:  # a keystore entry is ~60 bytes: a regular file of at most 64 KiB, never a FIFO or a device
        text = read_regular_file(path, "--signer-key", MAX_KEY_FILE_BYTES).decode("utf-8").strip()
    except UserError as exc:
        raise ValueError(str(exc)) from None
    except UnicodeDecodeError:
        raise ValueError("--signer-key: the file is not text; expected a base64 keystore entry") from None
    if text.startswith("suiprivkey1"):
        raise ValueError(
            "--signer-key: this is the bech32 'suiprivkey1…' export; store the keystore form instead "
            "(base64 of flag || secret, as in sui.keystore, or `sui keytool convert`)"
        )
    if text.startswith("["):
        try:
            entries = json.loads(text)
        except ValueError:
            raise ValueError("--signer-key: the file starts with '[' but is not a JSON array") from None
        if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], str):
            raise ValueError("--signer-key: a keystore file must hold exactly one entry (the stack owner's)")
        text = entries[0]
    try:
        return SuiSigner.from_keystore(text)
    except ProtocolError as exc:
        raise ValueError(f"--signer-key: not a Sui keystore entry: {exc.reason}") from None


def node_face_from(signer_key: str | None, stack_small_id: int | None, node_public_key: str | None) -> NodeFace:
    """The proxy's hop for a live node; each missing or unusable option is named."""
    given = {"--signer-key": signer_key, "--stack-small-id": stack_small_id, "--node-public-key": node_public_key}
    missing = [flag for flag, value in given.items() if value is None]
    if missing:
        raise ValueError(f"--face node with --target needs {', '.join(missing)}")
    assert signer_key is not None and stack_small_id is not None and node_public_key is not None
    try:
        node_key = b64decode_fixed(node_public_key, 32, field="--node-public-key")
    except ProtocolError as exc:
        raise ValueError(f"--node-public-key: {exc.reason}") from None
    if is_low_order(node_key):
        raise ValueError("--node-public-key: is a low-order X25519 point, not a node key")
    if not 0 <= stack_small_id < 2**64:
        raise ValueError("--stack-small-id: must be from 0 to 2^64 - 1")
    return NodeFace(load_signer(signer_key), stack_small_id, node_key)


def embedded_owner_scheme(
    scheme: str | None, *, face: str, target: str | None, signer_key: str | None
) -> Scheme | None:
    """``--signer-scheme``: the scheme of the stack owner the embedded mock's node face registers, or
    None for the default. It chooses a key only where the suite makes one: a live node's owner is
    whoever holds ``--signer-key``, and that key's scheme is the one it has."""
    if scheme is None:
        return None
    if face != "node":
        raise ValueError("--signer-scheme: only applies to --face node")
    if target:
        raise ValueError("--signer-scheme: only for the embedded mock; with --target the scheme is --signer-key's")
    if signer_key is not None:
        raise ValueError("--signer-scheme: cannot be combined with --signer-key (the key's own scheme is used)")
    return Scheme.from_label(scheme)

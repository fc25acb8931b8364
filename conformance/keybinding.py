"""What the chain says about the key a lock hands out: the I/O around the sans-I/O attestation core.

The KEY checks (docs/spec.md §15) and the reference client's opt-in verification read the same three
things: a Sui full node's ``suix_queryEvents`` pages (the node's latest ``NodePublicKeyCommittmentEvent``
and the ``NewKeyRotationEvent`` whose nonce its evidence answers), optionally the proxy service's
``GET /v1/get_node_attestation/{id}``, and the verdicts of the evidence against NVIDIA's device root (or,
with ``--trust-test-ca``, the mock node's test CA). This module only moves bytes and keeps the record;
:class:`~conformance.protocol.KeyScan` chooses what to ask and reads the answers, and
:func:`~conformance.protocol.verify_commitment` judges the evidence.

Both services are the operator's choice and may be hostile: every answer is read with a byte cap before
it is parsed, each call has the run's read timeout and the scan one deadline, the pages of each event type
are capped (``KeyScan.max_pages``), and every reason kept is one sanitised line. Requests to them are not
requests to the target, so ``--max-requests`` does not count them; these bounds do.
"""

from __future__ import annotations

import datetime as dt
import functools
import ssl
import time
from dataclasses import dataclass

import httpx
from cryptography import x509

from .protocol import (
    MAX_SUI_RESPONSE_BYTES,
    DeviceTestCa,
    KeyFacts,
    KeyScan,
    ProtocolError,
    get_object_request,
    nvidia_device_root,
    parse_node_attestation,
    parse_package_object,
)
from .protocol.attestation import (
    MAX_RIM_BYTES,
    AttestationError,
    EntryVerdict,
    ReferenceManifest,
    RimError,
    decode_evidence,
    parse_rim,
    verify_commitment,
)
from .protocol.attestation.testca import DEFAULT_SEED as TEST_CA_SEED
from .protocol.primitives import blake2b_256
from .textsafe import one_line

MAX_ATTESTATION_RESPONSE_BYTES = 4 * 1024 * 1024  # 256 KB of evidence as a JSON array of numbers, and room
SCAN_DEADLINE_S = 120.0  # every call of one scan, together
REASON_LEN = 300


TRUST_TEST_CA_WARNING = (
    "atoma-conformance: WARNING: --trust-test-ca: the KEY checks also trust the mock node's test CA, whose key "
    "is public; their verdicts say nothing about a GPU, and `certify` refuses this run."
)


class ChainReadError(Exception):
    """A service could not be read (transport, status, size): the KEY checks are not evaluated."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class KeySource:
    """Where the chain is read, and what the evidence is trusted to.

    ``trust_test_ca`` adds the mock node's test CA (of its default seed) to NVIDIA's root: for a run
    against a mock, never a certification. ``node_small_id`` is the node face's (it has no lock to say it).
    """

    sui_rpc: str
    package_id: str
    attestation_service: str | None = None
    trust_test_ca: bool = False
    max_key_age_s: float | None = None
    node_small_id: int | None = None
    rims: tuple[ReferenceManifest, ...] | None = None  # None: no RIM source, KEY-012 skips
    rim_source: str = ""  # what the RIMs are, in words a report can show
    # Roots a client adapter is handed with its instruction (the mock's test CA, as the run states it)
    extra_roots: tuple[x509.Certificate, ...] = ()

    def trusted_roots(self) -> tuple[x509.Certificate, ...]:
        roots = [nvidia_device_root()]
        if self.trust_test_ca:
            roots.append(_test_ca_root())
        return (*roots, *self.extra_roots)


@functools.lru_cache(maxsize=1)
def _test_ca_root() -> x509.Certificate:
    """The mock's test CA root (of its default seed): building the CA costs about 13 ms, so once."""
    return DeviceTestCa.create(TEST_CA_SEED).root


@functools.lru_cache(maxsize=8)
def _tls_context(verify: bool | str) -> ssl.SSLContext | bool:
    """One TLS context per verification setting: building one costs some 35 ms (the system's CA store),
    and a run reads the chain once per probe, a client once per lock."""
    if verify is False:
        return False
    if isinstance(verify, str):  # a CA bundle (--ca-bundle); httpx deprecates a bare path
        return ssl.create_default_context(cafile=verify)
    return httpx.create_ssl_context()  # httpx's own default: certifi's CAs


@dataclass(frozen=True)
class EvidenceReading:
    """The latest commitment's evidence, judged: ``verdicts`` per entry, or why it did not decode."""

    digest: str  # BLAKE2b-256 of evidence_bytes, hex: a report keeps this, never the bytes
    length: int
    verdicts: tuple[EntryVerdict, ...] | None
    decode_error: str | None


@dataclass(frozen=True)
class ServiceReading:
    """The proxy service's answer about the node: its evidence's digest, or why it could not be read."""

    digest: str | None
    length: int | None
    error: str | None
    status: int | None = None


@dataclass(frozen=True)
class KeyBindingRecord:
    """Everything a KEY check reads: the key handed out, the chain's facts, the evidence's verdicts."""

    handed_out_key: bytes
    node_small_id: int
    facts: KeyFacts
    evidence: EvidenceReading | None  # None: no unique latest commitment to judge
    service: ServiceReading | None  # None: no --attestation-service
    checked_at: dt.datetime


def digest(data: bytes) -> str:
    return blake2b_256(data).hex()


class ChainReader:
    """Reads a node's key facts from ``source``; one httpx client, closed with :meth:`close`."""

    def __init__(
        self,
        source: KeySource,
        *,
        timeout_s: float = 30.0,
        deadline_s: float = SCAN_DEADLINE_S,
        verify: bool | str = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.source = source
        self.deadline_s = deadline_s
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            verify=_tls_context(verify),
            follow_redirects=False,
            transport=transport,
            headers={"user-agent": "atoma-conformance (key binding)", "accept-encoding": "identity"},
        )
        self._until = 0.0

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ChainReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- the reads ---------------------------------------------------------------------------------

    def read(self, node_small_id: int, handed_out_key: bytes) -> KeyBindingRecord:
        """The record the KEY checks judge. Raises :class:`ChainReadError` (a service unreadable) or
        :class:`~conformance.protocol.ProtocolError` (an answer refused, naming its field)."""
        self._until = time.monotonic() + self.deadline_s
        source = self.source
        self._check_package()
        scan = KeyScan(source.package_id, node_small_id, watch_key=handed_out_key)
        while (body := scan.next_request()) is not None:
            scan.feed(self._post(source.sui_rpc, body, MAX_SUI_RESPONSE_BYTES, "--sui-rpc"))
        facts = scan.facts()
        now = dt.datetime.now(dt.UTC)
        evidence = self._judge(facts, now)
        service = self._service(node_small_id) if source.attestation_service else None
        return KeyBindingRecord(handed_out_key, node_small_id, facts, evidence, service, now)

    def _check_package(self) -> None:
        body = self._post(self.source.sui_rpc, get_object_request(self.source.package_id), 1024 * 1024, "--sui-rpc")
        parse_package_object(body, package_id=self.source.package_id)

    def _judge(self, facts: KeyFacts, now: dt.datetime) -> EvidenceReading | None:
        commitment, rotation = facts.commitment, facts.rotation
        if commitment is None:
            return None
        evidence = commitment.evidence_bytes
        try:
            if rotation is None:  # no contract nonce: the container can still be judged, not the reports
                decode_evidence(evidence)
                return EvidenceReading(digest(evidence), len(evidence), None, None)
            verdicts = verify_commitment(
                evidence,
                contract_nonce=rotation.nonce,
                node_public_key=commitment.new_public_key,
                trusted_roots=self.source.trusted_roots(),
                now=now,
            )
        except AttestationError as exc:
            return EvidenceReading(digest(evidence), len(evidence), None, one_line(str(exc), REASON_LEN))
        return EvidenceReading(digest(evidence), len(evidence), verdicts, None)

    def _service(self, node_small_id: int) -> ServiceReading:
        base = (self.source.attestation_service or "").rstrip("/")
        url = f"{base}/v1/get_node_attestation/{node_small_id}"
        try:
            body = self._get(url, MAX_ATTESTATION_RESPONSE_BYTES)
        except ChainReadError as exc:
            return ServiceReading(None, None, one_line(str(exc), REASON_LEN), exc.status)
        try:
            evidence = parse_node_attestation(body, node_small_id=node_small_id)
        except ProtocolError as exc:
            return ServiceReading(None, None, one_line(str(exc), REASON_LEN), 200)
        return ServiceReading(digest(evidence), len(evidence), None, 200)

    # --- bytes -------------------------------------------------------------------------------------

    def _post(self, url: str, body: bytes, cap: int, option: str) -> bytes:
        return self._exchange("POST", url, cap, option, body)

    def _get(self, url: str, cap: int) -> bytes:
        return self._exchange("GET", url, cap, "--attestation-service", None)

    def _exchange(self, method: str, url: str, cap: int, option: str, body: bytes | None) -> bytes:
        if time.monotonic() > self._until:
            raise ChainReadError(f"{option}: the chain reads took longer than {self.deadline_s:g} s in all")
        headers = {"content-type": "application/json"} if body is not None else {}
        try:
            with self._client.stream(method, url, content=body, headers=headers) as response:
                if response.status_code != 200:  # nothing of a refusal's body is read
                    raise ChainReadError(f"{option}: answered HTTP {response.status_code}", response.status_code)
                encoding = response.headers.get("content-encoding", "identity").lower()
                if encoding not in ("", "identity"):  # asked for identity: a decoder would inflate unbounded
                    raise ChainReadError(f"{option}: answered with content-encoding {one_line(encoding, 20)!r}")
                data = bytearray()
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > cap:
                        raise ChainReadError(f"{option}: the answer is larger than {cap:,} bytes")
                    if time.monotonic() > self._until:
                        raise ChainReadError(f"{option}: the answer took longer than {self.deadline_s:g} s")
                return bytes(data)
        except httpx.HTTPError as exc:
            raise ChainReadError(f"{option}: {type(exc).__name__}: {one_line(str(exc), 120)}") from None


# The run options key_source_from takes, by their dest names.
KEY_OPTIONS = (
    "sui_rpc",
    "sui_package",
    "attestation_service",
    "trust_test_ca",
    "max_key_age",
    "node_small_id",
    "rim_dir",
)
MAX_RIM_FILES = 64
RIM_SUFFIXES = (".swidtag", ".xml")


def key_source_from(
    *,
    embedded: bool,
    face: str,
    sui_rpc: str | None,
    sui_package: str | None,
    attestation_service: str | None,
    trust_test_ca: bool,
    max_key_age: float | None,
    node_small_id: int | None,
    rim_dir: str | None = None,
) -> KeySource | None:
    """The run's key source from its options, or None (the KEY checks skip, saying why).

    Against the embedded mock the source is the mock's own chain (``embedded_key_source``): naming
    another is refused, since the mock's lock would then be judged against a chain it never wrote to.
    """
    from .exits import UserError

    if node_small_id is not None and face != "node":
        raise UserError("--node-small-id", "only applies to --face node (a lock names the node on the proxy face)")
    if embedded:
        for option, value in (("--sui-rpc", sui_rpc), ("--sui-package", sui_package)):
            if value is not None:
                raise UserError(option, "only with --target: the embedded mock serves its own chain")
        if attestation_service is not None:
            raise UserError("--attestation-service", "only with --target: the embedded mock serves its own")
        if trust_test_ca:
            raise UserError("--trust-test-ca", "only with --target: the embedded run trusts the mock's test CA already")
        if node_small_id is not None:
            raise UserError("--node-small-id", "only with --target: the embedded node's id is known")
        if rim_dir is not None:
            raise UserError("--rim-dir", "only with --target: the embedded run compares with the mock's own RIM")
        return None
    if (sui_rpc is None) != (sui_package is None):
        given, missing = ("--sui-rpc", "--sui-package") if sui_package is None else ("--sui-package", "--sui-rpc")
        raise UserError(given, f"needs {missing} too (the KEY checks read the package's events from the full node)")
    if sui_rpc is None or sui_package is None:
        needing: tuple[tuple[str, object], ...] = (
            ("--attestation-service", attestation_service),
            ("--max-key-age", max_key_age),
            ("--node-small-id", node_small_id),
            ("--rim-dir", rim_dir),
        )
        for option, given_value in needing:
            if given_value is not None:
                raise UserError(option, "only with --sui-rpc and --sui-package (the key's commitment comes from chain)")
        if trust_test_ca:
            raise UserError("--trust-test-ca", "only with --sui-rpc and --sui-package")
        return None
    if face == "node" and node_small_id is None:
        raise UserError(
            "--node-small-id", "is required with --sui-rpc on the node face (it has no lock to name the node)"
        )
    rims = read_rim_dir(rim_dir) if rim_dir is not None else None
    return KeySource(
        sui_rpc,
        sui_package,
        attestation_service,
        trust_test_ca,
        max_key_age,
        node_small_id,
        rims,
        f"{len(rims)} RIM file(s) of --rim-dir (their XML signatures not verified)" if rims is not None else "",
    )


def read_rim_dir(directory: str) -> tuple[ReferenceManifest, ...]:
    """The RIMs of ``directory`` (``*.swidtag`` and ``*.xml``): regular files only, each within the RIM
    cap, at most :data:`MAX_RIM_FILES`, each parsed now, so a bad one is a usage error naming the file."""
    import os
    import stat
    from pathlib import Path

    from .exits import UserError

    path = Path(directory)
    if not path.is_dir():
        raise UserError("--rim-dir", f"{one_line(directory, 120)} is not a directory")
    names = sorted(p for p in path.iterdir() if p.suffix.lower() in RIM_SUFFIXES)
    if not names:
        raise UserError("--rim-dir", "holds no RIM file (*.swidtag or *.xml)")
    if len(names) > MAX_RIM_FILES:
        raise UserError("--rim-dir", f"holds {len(names)} RIM files, more than the {MAX_RIM_FILES} read")
    manifests = []
    for name in names:
        shown = one_line(name.name, 80)
        try:
            fd = os.open(name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError as exc:
            raise UserError("--rim-dir", f"{shown}: cannot be read ({exc.strerror})") from None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise UserError("--rim-dir", f"{shown}: is not a regular file")
            if info.st_size > MAX_RIM_BYTES:
                raise UserError("--rim-dir", f"{shown}: is larger than {MAX_RIM_BYTES:,} bytes")
            data = handle.read(MAX_RIM_BYTES + 1)
        try:
            manifests.append(parse_rim(data, field=name.name))
        except RimError as exc:
            raise UserError("--rim-dir", one_line(str(exc), 200)) from None
    return tuple(manifests)

"""conformance.targetopts: every bad value is refused with the option's name and the reason, and every
transport failure is told in words that point at the fix (http://, --ca-bundle, --insecure)."""

from __future__ import annotations

import argparse
import datetime
import io
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conformance.client import ClientOptions, ConfidentialClient
from conformance.exits import UserError
from conformance.options import (
    INSECURE_WARNING,
    finite_seconds,
    header,
    positive_int,
    validate_api_key,
    validate_target_url,
)
from conformance.targetopts import add_tls_arguments, client_options_from
from conformance.transport_errors import describe_transport_error, unreachable_message
from mock_node.config import MockConfig

# --- loopback TLS helpers (also used by test_fuzz_cli) -----------------------------------------------


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA), as PEM files: (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "atoma-conformance test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@contextmanager
def tls_mock(directory: Path, config: MockConfig | None = None) -> Iterator[tuple[str, Path]]:
    """The mock node served over TLS with a self-signed certificate: (https URL, the certificate)."""
    import time

    import uvicorn

    from mock_node.app import create_app

    cert, key = self_signed(directory)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            log_level="critical",
            access_log=False,
            lifespan="off",
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the TLS mock did not start within 10 s")
        time.sleep(0.01)
    try:
        yield f"https://127.0.0.1:{port}", cert
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- argparse validators ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "-1", "0", "1e400", "abc", "", "86401"])
def test_finite_seconds_refuses_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        finite_seconds(text)


def test_finite_seconds_accepts_positive_finite_numbers() -> None:
    assert finite_seconds("0.5") == 0.5 and finite_seconds("30") == 30.0 and finite_seconds("86400") == 86400.0


@pytest.mark.parametrize("text", ["0", "-3", "1.5", "x", ""])
def test_positive_int_refuses(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        positive_int(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("no-colon", "expected 'NAME: VALUE'"),
        (": value", "HTTP token"),
        ("bad name: v", "HTTP token"),
        ("X-A: v\r\nX-Injected: 1", "CR or LF"),
        ("X-A: line\nbreak", "CR or LF"),
        ("X-A:", "is empty"),
        ("X-A:    ", "is empty"),
        ("X-A: caf\u00e9", "printable ASCII"),
        ("X-A: bell\x07", "printable ASCII"),
        ("Authorization: Bearer x", "use --api-key"),
        ("Content-Length: 5", "set by the client"),
        ("Host: evil", "set by the client"),
    ],
)
def test_header_refuses_with_a_reason_and_never_echoes_the_value(text: str, reason: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        header(text)
    assert reason in str(caught.value)
    value = text.partition(":")[2].strip()
    if len(value) > 3:
        assert value not in str(caught.value)


def test_header_parses_name_and_value() -> None:
    assert header("X-Gateway-Key:  abc def ") == ("X-Gateway-Key", "abc def")
    assert header("x-route: a:b:c") == ("x-route", "a:b:c")


# --- target URL and API key ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com", "must be an http:// or https:// URL"),
        ("example.com", "must be an http:// or https:// URL"),
        ("http://", "has no host"),
        ("http://:8080", "has no host"),
        ("http://::1:8080", "IPv6 address goes in brackets"),
        ("http://[::1:8080", "IPv6 address goes in brackets"),
        ("http://[zz::1]:8080", "is not an IPv6 address"),
        ("http://[::1]x", "expected ':PORT'"),
        ("http://127.0.0.1:99999", "port must be a number from 1 to 65535"),
        ("http://127.0.0.1:0", "port must be a number from 1 to 65535"),
        ("http://127.0.0.1:http", "port must be a number from 1 to 65535"),
        ("http://127.0.0.1:", "port must be a number from 1 to 65535"),
        ("http://exa mple.com", "whitespace"),
        ("http://example.com/\n", "whitespace"),
        ("", "empty"),
        ("http://user:pw@example.com", "credentials in the URL"),
        ("http://example.com/?a=1", "no query or fragment"),
        ("http://example.com/#x", "no query or fragment"),
    ],
)
def test_a_bad_target_url_names_the_option_and_the_reason(url: str, reason: str) -> None:
    with pytest.raises(UserError) as caught:
        validate_target_url(url)
    assert caught.value.field == "--target"
    assert reason in str(caught.value) and "\n" not in str(caught.value)
    if "pw" in url:
        assert "pw" not in str(caught.value), "credentials are never echoed"


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "https://[::1]:443/prefix", "http://localhost", "HTTPS://A.B"]
)
def test_good_target_urls_pass_unchanged(url: str) -> None:
    assert validate_target_url(url) == url


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty or only whitespace"),
        ("   ", "empty or only whitespace"),
        ("\t\n", "empty or only whitespace"),
        ("sk-caf\u00e9", "non-ASCII character at position 7"),
        ("sk key", "whitespace or a control character at position 3"),
        ("sk-key\n", "whitespace or a control character at position 7"),
    ],
)
def test_a_bad_api_key_names_the_option_and_is_never_echoed(key: str, reason: str) -> None:
    with pytest.raises(UserError) as caught:
        validate_api_key(key)
    assert caught.value.field == "--api-key" and reason in str(caught.value)
    if key.strip():
        assert key.strip() not in str(caught.value)


# --- client options -----------------------------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_tls_arguments(parser)
    return parser.parse_args(argv)


def test_client_options_carry_headers_timeouts_and_overrides() -> None:
    args = parse(["--header", "X-A: 1", "--header", "X-B: two", "--timeout", "5", "--deadline", "9"])
    options = client_options_from(args, lock_retries=0)
    assert options.extra_headers == (("X-A", "1"), ("X-B", "two"))
    assert (options.timeout_s, options.deadline_s, options.lock_retries, options.verify) == (5.0, 9.0, 0, True)


def test_insecure_warns_once_and_does_not_combine_with_a_bundle(tmp_path: Path) -> None:
    args = parse(["--insecure"])
    err = io.StringIO()
    assert client_options_from(args, warn=err).verify is False
    assert client_options_from(args, warn=err).verify is False
    assert err.getvalue() == INSECURE_WARNING + "\n"
    with pytest.raises(UserError, match="--insecure: cannot be combined with --ca-bundle"):
        client_options_from(parse(["--insecure", "--ca-bundle", str(tmp_path / "x.pem")]))


def test_a_ca_bundle_must_exist_and_load(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"--ca-bundle: .* is not a readable file"):
        client_options_from(parse(["--ca-bundle", str(tmp_path / "missing.pem")]))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(UserError, match=r"--ca-bundle: .* is not a PEM CA bundle"):
        client_options_from(parse(["--ca-bundle", str(garbage)]))
    cert, _key = self_signed(tmp_path)
    assert client_options_from(parse(["--ca-bundle", str(cert)])).verify == str(cert.resolve())


# --- transport failures in words ------------------------------------------------------------------------


def failure(url: str, options: ClientOptions | None = None) -> str:
    """What the client records, in words, when a real request to ``url`` gets no answer."""
    with ConfidentialClient(url, None, options=options) as client:
        record = client.request("GET", "/")
    assert record.status is None and record.detail is not None
    return record.detail


def test_a_refused_connection_is_unreachable() -> None:
    error = failure(f"http://127.0.0.1:{closed_port()}")
    assert error == "ConnectError: connection refused"
    assert unreachable_message("http://x", error) == "http://x is unreachable (ConnectError: connection refused)"


def test_https_on_a_plain_http_port_says_so() -> None:
    from mock_node.testing import running_node

    with running_node() as url:
        error = failure(url.replace("http://", "https://"))
    text = unreachable_message("https://x", error)
    assert text.startswith("https://x: TLS handshake failed: ") and "(is the port plain HTTP? use http://)" in text


def test_a_self_signed_certificate_says_so_and_names_the_fixes(tmp_path: Path) -> None:
    with tls_mock(tmp_path) as (url, cert):
        error = failure(url)
        trusted = ConfidentialClient(url, None, options=ClientOptions(verify=str(cert)))
        with trusted:
            assert trusted.request("GET", "/v1/models").status is not None, "the bundle makes it trusted"
    text = error
    assert text.startswith("certificate verify failed: self-signed certificate")
    assert text.endswith("(use --ca-bundle or --insecure)")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (None, "no answer"),
        ("ConnectError", "ConnectError"),
        ("timeout", "timed out (no answer within --timeout)"),
        ("deadline", "the exchange overran its --deadline"),
        ("[SSL: WRONG_VERSION_NUMBER] wrong version number", "TLS handshake failed: wrong version number"),
        (
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate",
            "certificate verify failed: self-signed certificate (use --ca-bundle or --insecure)",
        ),
        (httpx.ConnectError("[Errno -2] Name or service not known"), "ConnectError: the host name does not resolve"),
        (httpx.ConnectTimeout("timed out"), "the connection timed out (ConnectTimeout)"),
        (httpx.ReadTimeout("timed out"), "timed out waiting for an answer (ReadTimeout)"),
        (ssl.SSLError(1, "[SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert"), "TLS handshake failed: "),
    ],
)
def test_describe_transport_error(error: BaseException | str | None, expected: str) -> None:
    assert describe_transport_error(error).startswith(expected)


def test_a_target_message_is_one_printable_line() -> None:
    text = describe_transport_error(RuntimeError("line one\nline two\x1b[31m" + "x" * 500))
    assert "\n" not in text and "\x1b" not in text and len(text) < 200

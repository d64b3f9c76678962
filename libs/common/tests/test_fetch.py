"""The SSRF-safe fetch client: what it refuses, what it pins, and the limits it keeps.

Remote servers are real HTTP(S) servers on 127.0.0.1 (``http.server`` in threads), reached
under names that only the test's resolver knows (``*.test``): a request can only arrive if
the client connected to the address it vetted. Refusals need no traffic at all.
"""

from __future__ import annotations

import datetime
import gzip
import json
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tessera.common.fetch import (
    FetchFailed,
    FetchPolicy,
    FetchTimeout,
    ForbiddenAddress,
    ForbiddenPort,
    ForbiddenScheme,
    ForbiddenUrl,
    ResponseTooLarge,
    SafeClient,
    TooManyRedirects,
    check_address,
    check_url,
)

# -- local servers ---------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, *args: Any) -> None:
        pass

    def handle_request(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.seen.append(Seen(self.command, self.path, headers, body))
        path = self.path.split("?")[0]
        route = self.server.routes.get(path) or self.server.routes.get("*") or ok
        route(self)

    do_GET = do_POST = do_HEAD = do_PUT = handle_request

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        headers = dict(headers or {})
        headers.setdefault("Content-Length", str(len(body)))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def chunked(self, chunks: Iterator[bytes], headers: dict[str, str] | None = None) -> None:
        self.send_response(200)
        for name, value in {"Transfer-Encoding": "chunked", **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


Route = Callable[[Handler], None]


def ok(h: Handler) -> None:
    h.reply(200, b"hello", {"Content-Type": "text/plain"})


def redirect(status: int, location: str) -> Route:
    return lambda h: h.reply(status, headers={"Location": location})


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, routes: dict[str, Route], tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes = routes
        self.seen: list[Seen] = []
        self.release = threading.Event()  # set at teardown: slow routes stop waiting
        self.sni: list[str | None] = []
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
            self.socket = tls.wrap_socket(self.socket, server_side=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hang up on purpose (limits, timeouts)


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(
        routes: dict[str, Route] | None = None, *, tls: ssl.SSLContext | None = None
    ) -> Server:
        server = Server(routes or {}, tls)
        threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.release.set()
        server.shutdown()
        server.server_close()


class FakeDNS:
    """Answers from a table; a list of answers is given in turn, the last one repeated."""

    def __init__(self, table: dict[str, list[str] | list[list[str]]]) -> None:
        self.table = table
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        answers = self.table.get(host)
        if answers is None:
            raise socket.gaierror(socket.EAI_NONAME, "unknown name")
        if answers and isinstance(answers[0], list):
            turn = sum(1 for h in self.calls if h == host) - 1
            return list(answers[min(turn, len(answers) - 1)])
        return [str(a) for a in answers]


def local(*servers: Server, **options: Any) -> FetchPolicy:
    """A policy for tests: private addresses allowed, the servers' ports (and 80) open."""
    ports = frozenset({80, *(s.port for s in servers)})
    return FetchPolicy(allow_private=True, ports=ports, **options)


# -- addresses -----------------------------------------------------------------------

PRIVATE = [
    "127.0.0.1",
    "127.8.9.10",
    "10.1.2.3",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.10.10",
    "100.64.0.1",
    "::1",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "fec0::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "192.0.2.10",  # documentation
]
NEVER = [
    "169.254.169.254",  # cloud metadata
    "fd00:ec2::254",
    "::ffff:169.254.169.254",
    "0.0.0.0",
    "0.1.2.3",
    "::",
    "224.0.0.1",
    "239.255.255.250",
    "ff02::1",
    "255.255.255.255",
    "240.0.0.1",
]
PUBLIC = ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


def bracketed(address: str) -> str:
    return f"[{address}]" if ":" in address else address


@pytest.mark.parametrize("address", PRIVATE + NEVER)
async def test_non_public_address_a_name_resolves_to_is_refused_by_default(address: str) -> None:
    dns = FakeDNS({"victim.test": [address]})
    async with SafeClient(resolver=dns) as client:
        with pytest.raises(ForbiddenAddress, match=r"victim\.test resolves to"):
            await client.get("http://victim.test/")


@pytest.mark.parametrize("address", PRIVATE + NEVER)
async def test_non_public_literal_address_is_refused_by_default(address: str) -> None:
    async def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError("a literal address needs no resolution")

    async with SafeClient(resolver=no_dns) as client:
        with pytest.raises(ForbiddenAddress):
            await client.get(f"http://{bracketed(address)}/")


@pytest.mark.parametrize("address", NEVER)
async def test_metadata_multicast_unspecified_and_reserved_are_refused_even_when_private_is_allowed(
    address: str,
) -> None:
    dns = FakeDNS({"victim.test": [address]})
    async with SafeClient(FetchPolicy(allow_private=True), resolver=dns) as client:
        with pytest.raises(ForbiddenAddress):
            await client.get("http://victim.test/")


@pytest.mark.parametrize("address", PRIVATE)
def test_private_classes_are_allowed_only_with_allow_private(address: str) -> None:
    check_address(address, allow_private=True)
    with pytest.raises(ForbiddenAddress):
        check_address(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    check_address(address)


async def test_a_name_with_one_private_address_among_public_ones_is_refused() -> None:
    dns = FakeDNS({"mixed.test": ["93.184.215.14", "10.0.0.1"]})
    async with SafeClient(resolver=dns) as client:
        with pytest.raises(ForbiddenAddress, match=r"10\.0\.0\.1 is private"):
            await client.get("https://mixed.test/")


async def test_loopback_server_is_refused_by_default_and_sees_nothing(serve: Any) -> None:
    server = serve()
    policy = FetchPolicy(ports=frozenset({server.port}))
    async with SafeClient(policy) as client:
        with pytest.raises(ForbiddenAddress, match="loopback"):
            await client.get(f"http://127.0.0.1:{server.port}/")
    assert server.seen == []


async def test_loopback_server_is_fetched_when_the_policy_allows_private(serve: Any) -> None:
    server = serve()
    async with SafeClient(local(server)) as client:
        response = await client.get(f"http://127.0.0.1:{server.port}/")
    assert (response.status, response.body, response.text) == (200, b"hello", "hello")
    assert response.peer == ("127.0.0.1", server.port)


# -- URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.test/pub/",
        "gopher://example.test:70/_GET",
        "data:text/plain,hello",
        "ws://example.test/",
    ],
)
async def test_schemes_other_than_http_and_https_are_refused(url: str) -> None:
    async with SafeClient() as client:
        with pytest.raises(ForbiddenScheme):
            await client.get(url)


def test_https_only_policy_refuses_http() -> None:
    with pytest.raises(ForbiddenScheme):
        check_url("http://example.test/", FetchPolicy(schemes=("https",)))


@pytest.mark.parametrize("url", ["http://example.test:22/", "https://example.test:6379/"])
async def test_ports_outside_the_policy_are_refused(url: str) -> None:
    async with SafeClient() as client:
        with pytest.raises(ForbiddenPort):
            await client.get(url)


def test_default_ports_are_80_443_8080_8443_and_an_explicit_set_replaces_them() -> None:
    for url in ("http://a.test/", "https://a.test/", "http://a.test:8080/", "https://a.test:8443/"):
        check_url(url, FetchPolicy())
    check_url("https://a.test:9443/", FetchPolicy(ports=frozenset({9443})))
    with pytest.raises(ForbiddenPort):
        check_url("https://a.test/", FetchPolicy(ports=frozenset({9443})))


async def test_credentials_in_the_url_are_refused_and_not_repeated() -> None:
    async with SafeClient() as client:
        with pytest.raises(ForbiddenUrl) as refused:
            await client.get("https://admin:s3cret@example.test/")
    assert "s3cret" not in str(refused.value)
    assert "admin" not in str(refused.value)


def test_policy_refuses_schemes_the_client_cannot_vet() -> None:
    with pytest.raises(ValueError):
        FetchPolicy(schemes=("https", "ftp"))


# -- redirects ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "refusal"),
    [
        ("http://169.254.169.254/latest/meta-data/", ForbiddenAddress),
        ("http://metadata.test/computeMetadata/v1/", ForbiddenAddress),
        ("http://0.0.0.0/", ForbiddenAddress),
        ("file:///etc/passwd", ForbiddenScheme),
        ("http://127.0.0.1:6379/", ForbiddenPort),
    ],
)
async def test_redirect_is_checked_again_though_the_first_hop_was_allowed(
    serve: Any, location: str, refusal: type[Exception]
) -> None:
    server = serve({"/": redirect(302, location)})
    dns = FakeDNS({"metadata.test": ["169.254.169.254"]})
    async with SafeClient(local(server), resolver=dns) as client:
        with pytest.raises(refusal):
            await client.get(f"http://127.0.0.1:{server.port}/")
    assert len(server.seen) == 1


def hops(h: Handler) -> None:
    n = int(h.path.rsplit("/", 1)[1])
    if n == 0:
        ok(h)
    else:
        h.reply(302, headers={"Location": f"/hop/{n - 1}"})


async def test_redirect_chains_stop_at_max_redirects(serve: Any) -> None:
    server = serve({"*": hops})
    async with SafeClient(local(server, max_redirects=2)) as client:
        response = await client.get(f"http://127.0.0.1:{server.port}/hop/2")
        assert response.final_url.endswith("/hop/0")
        assert response.url.endswith("/hop/2")
        server.seen.clear()
        with pytest.raises(TooManyRedirects):
            await client.get(f"http://127.0.0.1:{server.port}/hop/3")
    assert [s.path for s in server.seen] == ["/hop/3", "/hop/2", "/hop/1"]


async def test_redirects_are_returned_as_they_are_when_not_followed(serve: Any) -> None:
    server = serve({"*": hops})
    async with SafeClient(local(server)) as client:
        response = await client.get(f"http://127.0.0.1:{server.port}/hop/1", follow_redirects=False)
    assert (response.status, response.headers["location"]) == (302, "/hop/0")


async def test_secrets_are_dropped_when_a_redirect_leaves_the_origin(serve: Any) -> None:
    elsewhere = serve()
    origin = serve({"/go": redirect(307, f"http://127.0.0.1:{elsewhere.port}/landing")})
    async with SafeClient(
        local(origin, elsewhere), headers={"Authorization": "key-1"}, secret_headers=["X-Feed-Key"]
    ) as client:
        await client.get(
            f"http://127.0.0.1:{origin.port}/go",
            headers={"X-Feed-Key": "key-2", "X-Other": "kept"},
        )
    assert origin.seen[0].headers["authorization"] == "key-1"
    assert origin.seen[0].headers["x-feed-key"] == "key-2"
    landed = elsewhere.seen[0].headers
    assert "authorization" not in landed
    assert "x-feed-key" not in landed
    assert landed["x-other"] == "kept"


async def test_secrets_are_kept_on_a_same_origin_redirect(serve: Any) -> None:
    server = serve({"/go": redirect(302, "/")})
    async with SafeClient(local(server), headers={"Authorization": "key-1"}) as client:
        await client.get(f"http://127.0.0.1:{server.port}/go")
    assert [s.headers.get("authorization") for s in server.seen] == ["key-1", "key-1"]


async def test_303_turns_a_post_into_a_get_without_body(serve: Any) -> None:
    server = serve({"/events": redirect(303, "/done")})
    async with SafeClient(local(server)) as client:
        await client.post(f"http://127.0.0.1:{server.port}/events", json={"Event": {}})
    done = server.seen[1]
    assert (done.method, done.path, done.body) == ("GET", "/done", b"")
    assert "content-type" not in done.headers


async def test_307_repeats_the_method_and_body(serve: Any) -> None:
    server = serve({"/events": redirect(307, "/events/v2")})
    async with SafeClient(local(server)) as client:
        await client.post(f"http://127.0.0.1:{server.port}/events", json={"Event": {}})
    again = server.seen[1]
    assert (again.method, again.path, json.loads(again.body)) == (
        "POST",
        "/events/v2",
        {"Event": {}},
    )


# -- DNS rebinding, Host and TLS name ------------------------------------------------------


async def test_dns_rebinding_cannot_switch_the_address_after_the_check(serve: Any) -> None:
    server = serve()
    # The vetted first answer is the only one used: the name is unknown to the system, and
    # later answers would be refused, so the request arrives only over the pinned address.
    dns = FakeDNS({"rebind.test": [["127.0.0.1"], ["169.254.169.254"]]})
    async with SafeClient(local(server), resolver=dns) as client:
        response = await client.get(f"http://rebind.test:{server.port}/")
    assert response.status == 200
    assert response.peer == ("127.0.0.1", server.port)
    assert dns.calls == ["rebind.test"]
    assert server.seen[0].headers["host"] == f"rebind.test:{server.port}"


async def test_each_new_connection_is_vetted_again(serve: Any) -> None:
    server = serve({"/": lambda h: h.reply(200, b"bye", {"Connection": "close"})})
    dns = FakeDNS({"rebind.test": [["127.0.0.1"], ["169.254.169.254"]]})
    async with SafeClient(local(server), resolver=dns) as client:
        await client.get(f"http://rebind.test:{server.port}/")
        with pytest.raises(ForbiddenAddress, match="cloud metadata"):
            await client.get(f"http://rebind.test:{server.port}/")
    assert len(server.seen) == 1


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for ``sni.test`` signed by it: (ca, cert, key)."""
    folder = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fetch test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sni.test")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("sni.test")]), False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def tls_server(serve: Any, tls_files: tuple[Path, Path, Path]) -> Server:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files[1], tls_files[2])
    return serve(tls=context)


async def test_host_header_and_tls_name_are_the_original_name(
    serve: Any, tls_files: tuple[Path, Path, Path]
) -> None:
    server = tls_server(serve, tls_files)
    dns = FakeDNS({"sni.test": ["127.0.0.1"]})
    policy = local(server, verify_tls=str(tls_files[0]))
    async with SafeClient(policy, resolver=dns) as client:
        response = await client.get(f"https://sni.test:{server.port}/")
    assert response.status == 200
    assert server.sni == ["sni.test"]
    assert server.seen[0].headers["host"] == f"sni.test:{server.port}"


async def test_certificate_for_another_name_is_refused(
    serve: Any, tls_files: tuple[Path, Path, Path]
) -> None:
    server = tls_server(serve, tls_files)
    dns = FakeDNS({"other.test": ["127.0.0.1"]})
    policy = local(server, verify_tls=str(tls_files[0]))
    async with SafeClient(policy, resolver=dns) as client:
        with pytest.raises(FetchFailed):
            await client.get(f"https://other.test:{server.port}/")
    assert server.seen == []


# -- limits ----------------------------------------------------------------------------


def announce_big(h: Handler) -> None:
    h.send_response(200)
    h.send_header("Content-Length", "10000000")
    h.end_headers()
    h.wfile.write(b"x" * 1000)


def endless_chunks(h: Handler) -> None:
    h.chunked(b"x" * 1024 for _ in range(64))


async def test_body_announced_larger_than_max_bytes_is_refused_before_reading(serve: Any) -> None:
    server = serve({"/": announce_big})
    async with SafeClient(local(server, max_bytes=4096)) as client:
        with pytest.raises(ResponseTooLarge, match="announced"):
            await client.get(f"http://127.0.0.1:{server.port}/")
        with pytest.raises(ResponseTooLarge):
            async with client.stream("GET", f"http://127.0.0.1:{server.port}/"):
                pass


async def test_chunked_body_is_cut_off_at_max_bytes(serve: Any) -> None:
    server = serve({"/": endless_chunks})
    async with SafeClient(local(server, max_bytes=4096)) as client:
        with pytest.raises(ResponseTooLarge, match="exceeds 4096"):
            await client.get(f"http://127.0.0.1:{server.port}/")


async def test_stream_yields_chunks_up_to_max_bytes(serve: Any) -> None:
    server = serve({"/": endless_chunks, "/small": lambda h: h.chunked(iter([b"ab", b"cd"]))})
    received: list[bytes] = []

    async def drain(client: SafeClient, url: str) -> None:
        async with client.stream("GET", url) as stream:
            assert stream.status == 200
            async for chunk in stream:
                received.append(chunk)

    async with SafeClient(local(server, max_bytes=4096)) as client:
        await drain(client, f"http://127.0.0.1:{server.port}/small")
        assert b"".join(received) == b"abcd"
        received.clear()
        with pytest.raises(ResponseTooLarge):
            await drain(client, f"http://127.0.0.1:{server.port}/")
    assert 0 < len(b"".join(received)) <= 4096


async def test_gzip_body_is_decoded_and_a_compression_bomb_is_cut_off(serve: Any) -> None:
    document = json.dumps({"Event": {"info": "x" * 1000}}).encode()
    bomb = gzip.compress(b"\0" * 8_000_000, compresslevel=1)
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    encoded = {
        "/gzip": ("gzip", gzip.compress(document)),
        "/deflate": ("deflate", zlib.compress(document)),
        "/raw-deflate": ("deflate", raw_deflate.compress(document) + raw_deflate.flush()),
        "/bomb": ("gzip", bomb),
    }
    server = serve(
        {
            path: lambda h, coding=coding, body=body: h.reply(
                200, body, {"Content-Encoding": coding}
            )
            for path, (coding, body) in encoded.items()
        }
    )
    async with SafeClient(local(server, max_bytes=1_000_000)) as client:
        for path in ("/gzip", "/deflate", "/raw-deflate"):
            response = await client.get(f"http://127.0.0.1:{server.port}{path}")
            assert response.json() == {"Event": {"info": "x" * 1000}}
        assert server.seen[0].headers["accept-encoding"] == "gzip, deflate"
        with pytest.raises(ResponseTooLarge):
            await client.get(f"http://127.0.0.1:{server.port}/bomb")


async def test_head_is_not_refused_for_the_length_it_announces(serve: Any) -> None:
    server = serve({"/": lambda h: h.reply(200, headers={"Content-Length": "10000000"})})
    async with SafeClient(local(server, max_bytes=4096)) as client:
        response = await client.head(f"http://127.0.0.1:{server.port}/")
    assert (response.status, response.body) == (200, b"")


async def test_slow_server_times_out_as_fetch_failed(serve: Any) -> None:
    server = serve()
    server.routes["/"] = lambda h: server.release.wait(5) and None
    async with SafeClient(local(server, read_timeout_s=0.2)) as client:
        started = time.monotonic()
        with pytest.raises(FetchFailed) as failed:
            await client.get(f"http://127.0.0.1:{server.port}/")
    assert isinstance(failed.value, FetchTimeout)
    assert time.monotonic() - started < 2


async def test_trickling_server_hits_the_total_timeout(serve: Any) -> None:
    server = serve()

    def trickle(h: Handler) -> None:
        def drip() -> Iterator[bytes]:
            while not server.release.wait(0.05):
                yield b"."

        h.chunked(drip())

    server.routes["/"] = trickle
    async with SafeClient(local(server, read_timeout_s=2, total_timeout_s=0.4)) as client:
        started = time.monotonic()
        with pytest.raises(FetchTimeout, match="total"):
            await client.get(f"http://127.0.0.1:{server.port}/")
    assert time.monotonic() - started < 2


# -- what errors say ---------------------------------------------------------------------


async def test_error_messages_carry_no_credentials() -> None:
    async with SafeClient(headers={"Authorization": "abc\nsecret-key"}) as client:
        with pytest.raises(ForbiddenAddress) as refused:
            await client.get("http://10.0.0.1/feeds/manifest.json?apikey=secret-key")
        assert "secret-key" not in str(refused.value)
        assert refused.value.url == "http://10.0.0.1/feeds/manifest.json"


async def test_invalid_header_value_fails_without_quoting_it(serve: Any) -> None:
    server = serve()
    async with SafeClient(local(server)) as client:
        with pytest.raises(FetchFailed) as failed:
            await client.get(
                f"http://127.0.0.1:{server.port}/", headers={"Authorization": "key\r\nX: secret"}
            )
    assert "secret" not in str(failed.value)
    assert failed.value.__cause__ is None


async def test_unresolvable_name_fails() -> None:
    async with SafeClient(resolver=FakeDNS({})) as client:
        with pytest.raises(FetchFailed):
            await client.get("https://nowhere.test/")


# -- telemetry -------------------------------------------------------------------------


async def test_httpx_instrumentation_still_traces_with_the_original_url(serve: Any) -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    instrumentor = HTTPXClientInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        pytest.skip("httpx is already instrumented in this process")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server = serve()
    dns = FakeDNS({"traced.test": ["127.0.0.1"]})
    instrumentor.instrument(tracer_provider=provider)
    try:
        async with SafeClient(local(server), resolver=dns) as client:
            await client.get(f"http://traced.test:{server.port}/feed")
    finally:
        instrumentor.uninstrument()
    urls = [
        span.attributes.get("url.full") or span.attributes.get("http.url")
        for span in exporter.get_finished_spans()
        if span.attributes
    ]
    assert urls == [f"http://traced.test:{server.port}/feed"]

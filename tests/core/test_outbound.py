"""SSRF-safe outgoing URLs: only https to public addresses, whatever the URL or the DNS answer
tries, and the connection goes to the address that was checked."""

from __future__ import annotations

import http.server
import ipaddress
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trato.core.outbound import PinnedTransport, UnsafeURL, address_problem, check_url

PUBLIC = {"93.184.215.14", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4003:80f::200e"}


@pytest.mark.parametrize(("url", "reason"), [
    ("http://example.com/hook", "must start with https://"),
    ("ftp://example.com/", "must start with https://"),
    ("gopher://example.com/", "must start with https://"),
    ("file:///etc/passwd", "must start with https://"),
    ("https://user:pw@example.com/", "user name or password"),
    ("https://user@example.com/", "user name or password"),
    ("https:///nohost", "no host"),
    ("https://127.0.0.1/", "loopback"),
    ("https://127.8.9.10:8443/", "loopback"),
    ("https://[::1]/", "loopback"),
    ("https://0.0.0.0/", "unspecified"),
    ("https://[::]/", "unspecified"),
    ("https://10.1.2.3/", "private"),
    ("https://172.16.0.1/", "private"),
    ("https://192.168.1.1/", "private"),
    ("https://[fd12:3456::1]/", "private"),
    ("https://169.254.169.254/latest/meta-data/", "metadata"),
    ("https://[fd00:ec2::254]/", "metadata"),
    ("https://169.254.10.10/", "link-local"),
    ("https://[fe80::1]/", "link-local"),
    ("https://224.0.0.251/", "multicast"),
    ("https://[ff02::1]/", "multicast"),
    ("https://240.0.0.1/", "reserved"),
    ("https://100.64.0.1/", "carrier-grade NAT"),
    ("https://[::ffff:127.0.0.1]/", "loopback (IPv4 inside IPv6)"),
    ("https://[::ffff:169.254.169.254]/", "metadata service (IPv4 inside IPv6)"),
    ("https://[2002:7f00:1::]/", "loopback (IPv4 inside IPv6)"),  # 6to4 of 127.0.0.1
    ("https://[64:ff9b::a00:1]/", "private (IPv4 inside IPv6)"),  # NAT64 of 10.0.0.1
    ("https://2130706433/", "127.0.0.1 written in another notation"),
    ("https://0x7f000001/", "127.0.0.1 written in another notation"),
    ("https://0177.0.0.1/", "127.0.0.1 written in another notation"),
    ("https://127.1/", "127.0.0.1 written in another notation"),
    ("https://0x7f.0.0.1/", "127.0.0.1 written in another notation"),
    ("https://3232235777/", "192.168.1.1 written in another notation"),
    ("https://localhost/", "loopback"),
    ("https://exa mple.com/", "spaces"),
    ("https://example.com/\r\nHost: evil", "control characters"),
    ("https://example.com:99999/", "cannot be read"),
])
def test_hostile_urls_are_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(UnsafeURL) as refused:
        check_url(url, resolver=lambda host, port: ["127.0.0.1"] if host == "localhost" else ["93.184.215.14"])
    assert reason in refused.value.message
    assert refused.value.code == "unsafe_url" and refused.value.status_code == 422


def test_a_name_that_resolves_to_any_internal_address_is_refused() -> None:
    mixed = {"intranet.example": ["93.184.215.14", "10.0.0.7"], "meta.example": ["169.254.169.254"],
             "v6.example": ["2606:4700:4700::1111", "::1"]}
    for host, addresses in mixed.items():
        with pytest.raises(UnsafeURL) as refused:
            check_url(f"https://{host}/hook", resolver=lambda h, p, a=addresses: a)
        assert refused.value.details["host"] == host
        assert refused.value.details["address"] in addresses
    with pytest.raises(UnsafeURL, match="cannot be resolved"):
        check_url("https://nowhere.invalid/", resolver=lambda h, p: (_ for _ in ()).throw(OSError("NXDOMAIN")))


def test_public_addresses_pass_and_private_ones_only_when_allowed() -> None:
    checked = check_url("https://hooks.example.com:8443/in?x=1", resolver=lambda h, p: sorted(PUBLIC))
    assert (checked.host, checked.port, set(checked.addresses)) == ("hooks.example.com", 8443, PUBLIC)
    inside = check_url("http://10.0.0.5:8080/hook", allow_private=True)
    assert inside.addresses == ("10.0.0.5",)
    with pytest.raises(UnsafeURL, match="user name"):  # credentials are refused even inside
        check_url("http://a:b@10.0.0.5/", allow_private=True)


_IPV4 = st.integers(min_value=0, max_value=2**32 - 1).map(ipaddress.IPv4Address)
_IPV6 = st.integers(min_value=0, max_value=2**128 - 1).map(ipaddress.IPv6Address)
_INTERNAL_V4 = st.sampled_from(["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
                                "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4", "192.0.2.0/24",
                                "198.18.0.0/15"]).map(ipaddress.ip_network)


@settings(max_examples=300, deadline=None)
@given(network=_INTERNAL_V4, offset=st.integers(min_value=0, max_value=2**24))
def test_every_address_of_an_internal_ipv4_range_is_refused_also_inside_ipv6(
        network: ipaddress.IPv4Network, offset: int) -> None:
    ip = network[offset % network.num_addresses]
    assert address_problem(ip)
    mapped = ipaddress.IPv6Address(f"::ffff:{ip}")
    assert address_problem(mapped)
    sixtofour = ipaddress.IPv6Address((0x2002 << 112) | (int(ip) << 80))
    assert address_problem(sixtofour)
    with pytest.raises(UnsafeURL):
        check_url(f"https://[{mapped}]/")
    with pytest.raises(UnsafeURL):
        check_url("https://rebound.example/", resolver=lambda h, p: ["8.8.8.8", str(ip)])


@settings(max_examples=500, deadline=None)
@given(ip=st.one_of(_IPV4, _IPV6))
def test_an_address_passes_only_when_it_is_global_and_nothing_internal(ip: Any) -> None:
    problem = address_problem(ip)
    if problem is None:
        assert ip.is_global and not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
                                     or ip.is_reserved or ip.is_unspecified)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            assert address_problem(ip.ipv4_mapped) is None
    elif not ip.is_global:
        assert problem


@settings(max_examples=200, deadline=None)
@given(ip=_IPV4.filter(lambda ip: ip.is_loopback or ip.is_private))
def test_decimal_hex_and_octal_spellings_of_internal_addresses_are_refused(ip: ipaddress.IPv4Address) -> None:
    for spelled in (str(int(ip)), hex(int(ip)), ".".join(oct(int(b)).replace("0o", "0") for b in ip.packed)):
        with pytest.raises(UnsafeURL):
            check_url(f"https://{spelled}/")


# -- connecting to the checked address --------------------------------------------------------------


@pytest.fixture(scope="module")
def peer() -> Iterator[dict[str, Any]]:
    seen: dict[str, Any] = {"hosts": []}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen["hosts"].append(self.headers["Host"])
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    seen["port"] = server.server_address[1]
    yield seen
    server.shutdown()
    server.server_close()


def test_the_connection_goes_to_the_checked_address_while_the_host_name_stays(peer: dict[str, Any]) -> None:
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:  # first answer checked, later ones would differ
        calls.append(host)
        return ["127.0.0.1"] if len(calls) == 1 else ["192.0.2.1"]

    transport = PinnedTransport(allow_private=True, resolver=rebinding)
    url = f"http://hooks.example.test:{peer['port']}/in"
    checked = check_url(url, allow_private=True, resolver=rebinding)
    with httpx.Client(transport=transport, trust_env=False) as client, transport.pin(checked):
        assert client.get(url).text == "ok"
    assert calls == ["hooks.example.test"]  # resolved once, by the check; the connection used its answer
    assert peer["hosts"][-1] == f"hooks.example.test:{peer['port']}"


def test_an_unpinned_connection_is_checked_when_it_opens(peer: dict[str, Any]) -> None:
    with httpx.Client(transport=PinnedTransport(), trust_env=False) as client:
        with pytest.raises(httpx.ConnectError, match="loopback"):
            client.get(f"http://127.0.0.1:{peer['port']}/")
        with pytest.raises(httpx.ConnectError, match="loopback"):
            client.get(f"https://localhost:{peer['port']}/")


@pytest.fixture(scope="module")
def tls_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An HTTPS server on loopback whose certificate names only ``hooks.example.test``."""
    import datetime
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.example.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.example.test")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    names: list[str | None] = []
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    server_context.sni_callback = lambda sock, server_name, ctx: names.append(server_name)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("content-length", "6")
            self.end_headers()
            self.wfile.write(b"secure")

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client_context = ssl.create_default_context(cafile=str(folder / "cert.pem"))
    yield {"port": server.server_address[1], "names": names, "context": client_context}
    server.shutdown()
    server.server_close()


def test_https_to_the_pinned_address_keeps_sni_and_the_certificate_check(tls_peer: dict[str, Any]) -> None:
    resolver = lambda host, port: ["127.0.0.1"]  # noqa: E731
    transport = PinnedTransport(allow_private=True, resolver=resolver, verify=tls_peer["context"])
    url = f"https://hooks.example.test:{tls_peer['port']}/in"
    with httpx.Client(transport=transport, trust_env=False) as client:
        with transport.pin(check_url(url, allow_private=True, resolver=resolver)):
            assert client.get(url).text == "secure"
        assert tls_peer["names"][-1] == "hooks.example.test"
        # The same address under a name the certificate does not carry: the TLS check still refuses.
        other = f"https://other.example.test:{tls_peer['port']}/in"
        with transport.pin(check_url(other, allow_private=True, resolver=resolver)), \
                pytest.raises(httpx.ConnectError, match="(?i)certificate|hostname"):
            client.get(other)

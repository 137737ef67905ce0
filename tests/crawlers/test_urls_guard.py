"""URL normalisation, scope, traps and the SSRF guard's classification (literal addresses only)."""

from __future__ import annotations

import pytest

from crawlers.errors import BlockedAddressError, CrawlError
from crawlers.guard import AddressGuard, classify
from crawlers.urls import MAX_URL_LENGTH, ScopeRule, URLError, normalize, trap_reason


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("HTTP://EXAMPLE.com:80/", "http://example.com/"),
        ("https://example.com:443/a/../b/./c", "https://example.com/b/c"),
        ("https://example.com:8443/x#frag", "https://example.com:8443/x"),
        ("http://user:pw@example.com/p", "http://example.com/p"),
        ("http://example.com/p?z=1&a=2&sid=abc", "http://example.com/p?a=2&z=1"),
        ("http://example.com/p;jsessionid=XYZ?q=1", "http://example.com/p?q=1"),
        ("http://example.com/%7euser/a%2fb", "http://example.com/~user/a/b"),
        ("http://例子.测试/图", "http://xn--fsqu00a.xn--0zwm56d/%E5%9B%BE"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("http://example.com", "http://example.com/"),
        ("http://example.com/dir/", "http://example.com/dir/"),
    ],
)
def test_normalize(raw: str, want: str) -> None:
    assert normalize(raw) == want


@pytest.mark.parametrize(
    "bad",
    [
        "javascript:alert(1)",
        "ftp://example.com/x",
        "file:///etc/passwd",
        "http:///nohost",
        "http://h:99999/",
        "mailto:a@b",
    ],
)
def test_normalize_refuses(bad: str) -> None:
    with pytest.raises(URLError):
        normalize(bad)


def test_length_cap() -> None:
    with pytest.raises(URLError, match="longer"):
        normalize("http://example.com/" + "a" * MAX_URL_LENGTH)
    with pytest.raises(URLError):
        normalize("http://example.com/" + "a" * (10 * MAX_URL_LENGTH))


def test_scopes() -> None:
    seed = normalize("http://www.example.com/docs/index.html")
    urls = {
        "same": seed,
        "under": "http://www.example.com/docs/a/b.html",
        "other_path": "http://www.example.com/blog/",
        "other_port": "http://www.example.com:8080/docs/x",
        "sub": "http://img.example.com/x.jpg",
        "other": "http://example.org/docs/x",
    }
    allowed = {
        scope: {k for k, u in urls.items() if ScopeRule(seed, scope).allows(u)}
        for scope in ("page", "prefix", "host", "domain")
    }
    assert allowed["page"] == {"same"}
    assert allowed["prefix"] == {"same", "under"}
    assert allowed["host"] == {"same", "under", "other_path"}
    assert allowed["domain"] == {"same", "under", "other_path", "other_port", "sub"}
    with pytest.raises(CrawlError):
        ScopeRule(seed, "planet")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "http://h.test/a/b/a/b/a/b/",
        "http://h.test/x/x/x/",
        "http://h.test/" + "/".join(f"s{i}" for i in range(20)),
        "http://h.test/cal?date=2026-12-05",
        "http://h.test/cal?month=2027-01",
        "http://h.test/events?year=2031",
        "http://h.test/archive/2026/12/05/11/",
        "http://h.test/q?" + "&".join(f"k{i}=1" for i in range(20)),
    ],
)
def test_traps(url: str) -> None:
    assert trap_reason(normalize(url)) is not None


@pytest.mark.parametrize(
    "url", ["http://h.test/", "http://h.test/gallery/2026/photo.html", "http://h.test/p?id=42&page=3"]
)
def test_not_traps(url: str) -> None:
    assert trap_reason(normalize(url)) is None


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.0.0.2", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.64.0.1", "reserved"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("198.18.0.1", "reserved"),
        ("2001:db8::1", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "metadata"),
        ("::ffff:10.0.0.1", "private"),
        ("2002:a00:1::", "private"),  # 6to4 of 10.0.0.1
        ("64:ff9b::a9fe:a9fe", "metadata"),  # NAT64 of 169.254.169.254
        ("::10.0.0.1", "private"),  # IPv4-compatible
    ],
)
def test_classify_refuses(address: str, why: str) -> None:
    assert classify(address) == why


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_classify_public(address: str) -> None:
    assert classify(address) is None


def _table(answers: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    def resolve(host: str, port: int) -> list[str]:
        return answers[host]

    return resolve


def test_guard_resolves_and_allows_by_list() -> None:
    table = _table(
        {
            "site.test": ["127.0.0.1"],
            "public.test": ["8.8.8.8"],
            "meta.test": ["169.254.169.254"],
            "rebind.test": ["8.8.8.8", "10.0.0.5"],
            "other-loop.test": ["127.0.0.2"],
            "empty.test": [],
        }
    )
    guard = AddressGuard(["127.0.0.1"], table)
    assert guard.resolve("site.test", 80) == "127.0.0.1"
    assert guard.resolve("public.test", 80) == "8.8.8.8"
    for host in ("meta.test", "rebind.test", "other-loop.test", "empty.test"):
        with pytest.raises(BlockedAddressError):
            guard.resolve(host, 80)
    closed = AddressGuard([], table)
    with pytest.raises(BlockedAddressError, match="loopback"):
        closed.resolve("site.test", 80)
    net = AddressGuard(["10.0.0.0/8"], table)
    assert net.refusal("10.0.0.5") is None and net.refusal("10.0.0.5") is None
    assert net.refusal("::ffff:10.0.0.5") == "private"  # allow-list entries match their own family only
    with pytest.raises(BlockedAddressError):
        AddressGuard(["not-an-address"])

"""URIs that clients send (redirect URIs, client ID URLs, client and logo URIs), checked before anything parses them.

`urllib.parse` takes almost any text and raises ValueError on a few (an unclosed `[`, a port that is
not a number), IDNA encoding raises on others, and a space or a raw non-ASCII character goes through
untouched. Everything is checked here first, so a bad URI is one ValueError with a message a person
can act on, and what passes is plain RFC 3986 ASCII that no later parse can trip over.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

MAX_URI_LENGTH = 2000
# RFC 3986 §2: unreserved, reserved and "%" (only as the start of a %XX escape, checked apart).
_URI_CHARACTERS = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# RFC 8252 §7.1: a private-use scheme is a domain name the app's publisher controls, reversed.
_REVERSE_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$")


@dataclass(frozen=True)
class Uri:
    text: str
    scheme: str  # lower case
    host: str  # lower case, IPv6 without brackets; "" when there is no authority
    parts: SplitResult


def parse(text: str, what: str = "URI") -> Uri:
    """`text` split into its parts if it is an absolute RFC 3986 URI; ValueError saying what is wrong otherwise."""
    if len(text) > MAX_URI_LENGTH:
        raise ValueError(f"the {what} is longer than {MAX_URI_LENGTH} characters")
    if not _URI_CHARACTERS.fullmatch(text) or _BAD_ESCAPE.search(text):
        raise ValueError(
            f"{text!r} is not a valid {what}: only ASCII URI characters, no spaces, and % only in %XX escapes"
        )
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        _ = parts.port  # raises on a port that is not a number in 0-65535
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid {what}: its host or port is malformed") from exc
    scheme = parts.scheme.lower()
    if not scheme or not _SCHEME.fullmatch(scheme):
        raise ValueError(f"{text!r} is not an absolute {what} (it needs a scheme such as https:)")
    return Uri(text, scheme, host.lower(), parts)


def check_host(uri: Uri, what: str = "URI") -> None:
    """ValueError unless the URI has a host that is a DNS name (ASCII, punycode for IDNs) or an IP literal."""
    host = uri.host
    if not host:
        raise ValueError(f"{uri.text!r}: the {what} has no host")
    if "[" in uri.parts.netloc:
        try:
            ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise ValueError(f"{uri.text!r}: [{host}] is not an IPv6 address") from exc
        return
    labels = host.removesuffix(".").split(".")
    if len(host) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        raise ValueError(
            f"{uri.text!r}: {host!r} is not a valid host name (letters, digits and hyphens; "
            "internationalized names in their xn-- form)"
        )


def is_reverse_domain_scheme(scheme: str) -> bool:
    return bool(_REVERSE_DOMAIN.fullmatch(scheme))


def web_url(text: str, what: str) -> str:
    """`text` if it is an http(s) URL with a valid host (client_uri, logo_uri and the like); ValueError otherwise."""
    uri = parse(text, what)
    if uri.scheme not in {"http", "https"}:
        raise ValueError(f"{text!r}: the {what} must be an https URL")
    check_host(uri, what)
    return text

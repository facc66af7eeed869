"""A person at a browser, for `mcpkit token URL`'s browser flow: opens the URL, signs in on the dev
form with FAKE_BROWSER_USER / FAKE_BROWSER_PASSWORD, approves the consent page and follows the
redirect to the loopback callback. Started by Python's `webbrowser` through the BROWSER variable."""

from __future__ import annotations

import os
import re
import sys

import httpx


def main(url: str) -> None:
    with httpx.Client(timeout=30, follow_redirects=False) as http:
        response = http.get(url)
        for _ in range(8):
            location = response.headers.get("location")
            if location is not None:
                target = response.request.url.join(location)
                response = http.get(target)
                if target.path == "/callback":
                    return
                continue
            txn = re.search(r'name="txn" value="([^"]+)"', response.text)
            request = re.search(r'name="request" value="([^"]+)"', response.text)
            if txn:
                form = {"txn": txn.group(1), "username": os.environ["FAKE_BROWSER_USER"]}
                form["password"] = os.environ["FAKE_BROWSER_PASSWORD"]
                response = http.post(response.request.url.join("/oauth/dev-login"), data=form)
            elif request:
                form = {"request": request.group(1), "decision": "approve"}
                response = http.post(response.request.url.join("/oauth/consent"), data=form)
            else:
                sys.exit(f"fake browser: unexpected page {response.status_code}: {response.text[:300]}")
    sys.exit("fake browser: never reached the callback")


if __name__ == "__main__":
    main(sys.argv[1])

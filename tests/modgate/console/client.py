"""An HTTP client that behaves like a reviewer's browser: keeps the session cookie, sends the
page's CSRF token and its own Origin with every form POST."""

from __future__ import annotations

import re

import httpx

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Reviewer:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, follow_redirects=False, trust_env=False, timeout=10.0)
        self.csrf = ""

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        response = self.http.get(path, **kwargs)  # type: ignore[arg-type]
        found = (
            _CSRF.search(response.text)
            if response.headers.get("content-type", "").startswith("text/html")
            else None
        )
        if found:
            self.csrf = found.group(1)
        return response

    def post(
        self,
        path: str,
        fields: dict[str, str] | None = None,
        *,
        csrf: str | None = None,
        origin: str | None = None,
    ) -> httpx.Response:
        data = {"csrf_token": self.csrf if csrf is None else csrf, **(fields or {})}
        if csrf == "":
            data.pop("csrf_token")
        headers = {"origin": self.base_url if origin is None else origin} if origin != "" else {}
        return self.http.post(path, data=data, headers=headers)

    def login(self, token: str) -> httpx.Response:
        self.get("/login")
        response = self.post("/login", {"token": token})
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/queue"
        self.get("/queue")
        return response

    def close(self) -> None:
        self.http.close()

"""The request body limit, enforced while the body is read, before any route or dependency.

A declared Content-Length over the limit is refused before a byte is read; a chunked body (or
one whose Content-Length lies) is counted as it arrives and refused the moment it passes the
limit, so no request, authenticated or not, makes the API hold more than the limit in memory.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.errors import (
    OPENAI_PATHS,
    PayloadTooLarge,
    error_response,
    openai_error_response,
)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def refuse() -> None:
            # Built only when refusing: every request passes through here.
            too_large = PayloadTooLarge(f"request body over {self.max_bytes} bytes")
            openai_route = str(scope["path"]).startswith(OPENAI_PATHS)
            render = openai_error_response if openai_route else error_response
            await render(too_large)(scope, receive, send)

        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await refuse()
            return
        received = 0
        refused = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Answer now and tell the app the client left: it stops reading, and
                    # whatever it answers is dropped below.
                    refused = True
                    if not started:
                        await refuse()
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if not refused:
                started = started or message["type"] == "http.response.start"
                await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not refused:
                raise

"""An ASGI app that authenticates each request, authorises it by role, and forwards it to
a Dagster webserver listening on a private loopback port.

Dagster OSS has no login, and its UI does everything (reads, launches, wipes) through one
GraphQL endpoint, so the role is decided per GraphQL operation (watchkeeper.security.
graphql_access), over HTTP and over the subscription websocket alike. Everything else is
a read when its method is GET/HEAD/OPTIONS and an admin's action otherwise. Requests that
fail get 401 (who are you?) or 403 (not allowed) and nothing from Dagster. The token and
the session cookie are stripped before forwarding, and never logged: errors name what was
wrong with a token, not the token.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from watchkeeper.front.logins import AuditUnavailable, LoginAudit
from watchkeeper.security.bearer import bearer_token
from watchkeeper.security.graphql_access import GraphQLRequestError, required_role
from watchkeeper.security.roles import Role
from watchkeeper.security.tokens import AuthenticationError, Principal, TokenVerifier

SESSION_COOKIE = "watchkeeper_session"
GRAPHQL_PATH = "/graphql"
MAX_BODY_BYTES = 4 * 1024 * 1024
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Connection-level headers (RFC 9110 7.6.1) and the ones this front owns.
HOP_HEADERS = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
                         "upgrade", "host", "authorization", "cookie", "content-length"})
WS_START = frozenset({"start", "subscribe"})   # graphql-ws and graphql-transport-ws operation messages
log = logging.getLogger(__name__)


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Front:
    """The ASGI app. `upstream` is the Dagster webserver's base URL (http://127.0.0.1:PORT);
    `logins` puts each login, refused login and role change in the audit trail."""

    def __init__(self, verifier: TokenVerifier, upstream: str, logins: LoginAudit) -> None:
        self.verifier, self.logins = verifier, logins
        self.upstream = upstream.rstrip("/")
        self.client = httpx.AsyncClient(base_url=self.upstream, timeout=httpx.Timeout(60.0, connect=5.0))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(Request(scope, receive), send)
        elif scope["type"] == "websocket":
            await self._websocket(WebSocket(scope, receive, send))
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send, self.client.aclose)

    # --- HTTP ------------------------------------------------------------------------------

    async def _http(self, request: Request, send: Send) -> None:
        try:
            principal = await self._authenticate(request.headers.get("authorization"), request.cookies,
                                                 _remote(request.client))
            if request.url.path == "/auth/session":
                response = self._session(request, principal)
            else:
                body = await _body(request)
                _authorise(principal, _http_role(request, body))
                response = await self._forward(request, body)
        except Refused as refusal:
            response = _refusal(refusal)
        await response(request.scope, request.receive, send)

    async def _authenticate(self, authorization: str | None, cookies: dict[str, str], remote: str | None) -> Principal:
        token = bearer_token(authorization) or cookies.get(SESSION_COOKIE, "")
        try:
            return await anyio.to_thread.run_sync(self._verified, token, remote)
        except AuthenticationError as error:
            raise Refused(401, str(error)) from None
        except AuditUnavailable as error:
            raise Refused(503, str(error)) from None

    def _verified(self, token: str, remote: str | None) -> Principal:
        """The token's principal, its login (or refusal) audited; a request without a token is no login."""
        try:
            principal = self.verifier.verify(token)
        except AuthenticationError as error:
            if token:
                self.logins.refused(token, str(error), remote)
            raise
        self.logins.accepted(token, principal, remote)
        return principal

    def _session(self, request: Request, principal: Principal) -> Response:
        """POST /auth/session with a bearer token: the token as an HttpOnly cookie (for browsers);
        DELETE /auth/session: the cookie removed."""
        response = Response(status_code=204)
        if request.method == "POST" and bearer_token(request.headers.get("authorization")):
            response.set_cookie(SESSION_COOKIE, bearer_token(request.headers["authorization"]),
                                max_age=max(0, principal.expires_at - int(time.time())), httponly=True,
                                secure=True, samesite="strict")
        elif request.method == "DELETE":
            response.delete_cookie(SESSION_COOKIE, httponly=True, secure=True, samesite="strict")
        else:
            raise Refused(405, "POST a bearer token to start a session, DELETE to end it")
        return response

    async def _forward(self, request: Request, body) -> Response:
        headers = _forwarded_headers(request.headers.items(), request.cookies)
        if body is None and request.method not in READ_METHODS:
            body = request.stream()   # streamed through, e.g. an admin's report_asset_materialization
        upstream = self.client.build_request(request.method, request.url.path, params=request.url.query or None,
                                             headers=headers, content=body)
        try:
            answer = await self.client.send(upstream, stream=True)
        except httpx.HTTPError as error:
            log.warning("the Dagster webserver did not answer: %s", type(error).__name__)
            return JSONResponse({"error": "the Dagster webserver is not answering"}, status_code=502)
        kept = {k: v for k, v in answer.headers.multi_items() if k.lower() not in HOP_HEADERS - {"content-length"}}
        return StreamingResponse(answer.aiter_raw(), status_code=answer.status_code, headers=kept,
                                 background=_Close(answer))

    # --- websocket (GraphQL subscriptions) ---------------------------------------------------

    async def _websocket(self, client: WebSocket) -> None:
        import websockets

        try:
            principal = await self._authenticate(client.headers.get("authorization"), client.cookies,
                                                 _remote(client.client))
            _authorise(principal, Role.VIEWER)
        except Refused as refusal:
            await _deny(client, refusal)
            return
        url = "ws" + self.upstream[len("http"):] + client.url.path
        offered = client.scope.get("subprotocols") or []
        async with websockets.connect(url, subprotocols=offered or None, max_size=None) as dagster:
            await client.accept(subprotocol=dagster.subprotocol)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._to_dagster, client, dagster, principal, tasks.cancel_scope)
                tasks.start_soon(_to_client, dagster, client, tasks.cancel_scope)

    async def _to_dagster(self, client: WebSocket, dagster, principal: Principal, scope: anyio.CancelScope) -> None:
        try:
            while True:
                text = await client.receive_text()
                if time.time() > principal.expires_at:
                    await client.close(code=4401, reason="the token has expired")
                    break
                try:
                    message = json.loads(text)
                    if isinstance(message, dict) and message.get("type") in WS_START:
                        payload = message.get("payload")
                        _authorise(principal, required_role(payload.get("query") if isinstance(payload, dict)
                                                            else None))
                except (ValueError, Refused) as error:   # GraphQLRequestError is a ValueError
                    await client.close(code=4403 if isinstance(error, Refused) else 4400, reason=str(error)[:120])
                    break
                await dagster.send(text)
        except WebSocketDisconnect:
            pass
        finally:
            scope.cancel()


async def _to_client(dagster, client: WebSocket, scope: anyio.CancelScope) -> None:
    import websockets

    try:
        async for message in dagster:
            await (client.send_text(message) if isinstance(message, str) else client.send_bytes(message))
    except (websockets.ConnectionClosed, WebSocketDisconnect, RuntimeError):
        pass
    finally:
        scope.cancel()


def _http_role(request: Request, body: bytes | None) -> Role:
    if request.url.path != GRAPHQL_PATH:
        return Role.VIEWER if request.method in READ_METHODS else Role.ADMIN
    if request.method == "POST":
        try:
            payload = json.loads(body or b"")
        except ValueError:
            raise Refused(400, "a GraphQL request must be a JSON body") from None
        batch = payload if isinstance(payload, list) else [payload]
        try:
            return max((required_role(item.get("query") if isinstance(item, dict) else None) for item in batch),
                       default=Role.ADMIN)
        except GraphQLRequestError as error:
            raise Refused(400, str(error)) from None
    if request.method in READ_METHODS:
        query = request.query_params.get("query")
        try:   # without a query, GET /graphql is the GraphiQL page
            return required_role(query) if query is not None else Role.VIEWER
        except GraphQLRequestError as error:
            raise Refused(400, str(error)) from None
    return Role.ADMIN


def _remote(client) -> str | None:
    return client.host if client else None


def _authorise(principal: Principal, needed: Role) -> None:
    if principal.role is None or principal.role < needed:
        held = principal.role.label if principal.role else "no Watchkeeper role"
        raise Refused(403, f"this needs the {needed.label} role; the token grants {held}")


async def _body(request: Request) -> bytes | None:
    """The body of a GraphQL POST (read to be parsed, at most MAX_BODY_BYTES); None for others (streamed)."""
    if request.url.path != GRAPHQL_PATH or request.method != "POST":
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise Refused(413, f"a GraphQL request is limited to {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _forwarded_headers(items, cookies: dict[str, str]) -> list[tuple[str, str]]:
    """The request's headers without the credentials and connection-level ones; other cookies kept."""
    headers = [(k, v) for k, v in items if k.lower() not in HOP_HEADERS]
    others = "; ".join(f"{k}={v}" for k, v in cookies.items() if k != SESSION_COOKIE)
    return headers + ([("cookie", others)] if others else [])


def _refusal(refusal: Refused) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="watchkeeper", error="invalid_token"'} if refusal.status == 401 else {}
    return JSONResponse({"error": str(refusal)}, status_code=refusal.status, headers=headers)


async def _deny(client: WebSocket, refusal: Refused) -> None:
    """Refuse a websocket handshake with the HTTP status itself where the server supports it."""
    if "websocket.http.response" in client.scope.get("extensions", {}):
        await client.send_denial_response(_refusal(refusal))
    else:
        await client.close(code=4401 if refusal.status == 401 else 4403)


class _Close:
    """Background task that releases the upstream response once the client has it."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response

    async def __call__(self) -> None:
        await self.response.aclose()


async def _lifespan(receive: Receive, send: Send, on_shutdown: Callable[[], Awaitable[None]]) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await on_shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return

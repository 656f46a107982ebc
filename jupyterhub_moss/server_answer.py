"""Waiting for a single-user server to answer HTTP, so that ``start()`` returns only then.

JupyterHub checks a new server right after ``start()`` returns, and again after a growing,
random delay when it does not answer yet (0.2 s, 0.4 s, 0.8 s...): a server that answers a
moment after the first check costs the user up to a second or two more. Our launcher reports the
port as soon as the server listens, and the kernel then holds connections until the server's
event loop runs, so one request sent now is answered the moment the server can answer. A
refused connection (a server that is not listening yet) is tried again every ``RETRY_SECONDS``:
this is traffic to the job's own node, never to Slurm.
"""

from __future__ import annotations

import asyncio

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.iostream import StreamClosedError

__all__ = ["RETRY_SECONDS", "wait_until_answering"]

RETRY_SECONDS = 0.05


async def answers(url: str, timeout: float) -> bool:
    """Whether ``url`` gives any HTTP answer within ``timeout`` (a redirect or an error page
    counts: the server is up, and JupyterHub's own check decides the rest)."""
    request = HTTPRequest(
        url,
        follow_redirects=False,
        connect_timeout=min(timeout, 5.0),
        request_timeout=timeout,
    )
    try:
        await AsyncHTTPClient().fetch(request, raise_error=False)
    except HTTPClientError as error:
        return error.code != 599  # tornado's 599: a timeout or a lost connection, no answer
    except (OSError, asyncio.TimeoutError, StreamClosedError):
        return False
    return True


async def wait_until_answering(url: str, timeout: float) -> bool:
    """True once ``url`` answers; False after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (remaining := deadline - loop.time()) > 0:
        if await answers(url, remaining):
            return True
        await asyncio.sleep(RETRY_SECONDS)
    return False

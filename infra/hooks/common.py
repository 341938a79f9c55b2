"""What both azd hooks share: the azd environment, the ARM client options, one clear error per failure, waiting."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from azure.core.exceptions import HttpResponseError

ARM = "https://management.azure.com"


class HookError(RuntimeError):
    """A deployment step cannot go on; the message says what is wrong and what to do."""


def need(env: Mapping[str, str], *names: str) -> list[str]:
    """The values of azd environment variables (provision outputs), or a HookError naming the missing ones."""
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise HookError(f"missing from the azd environment: {', '.join(missing)} (run `azd provision` first; "
                        "hooks read the outputs of infra/main.bicep)")
    return [env[n] for n in names]


def client_options(base_url: str | None, **kwargs: Any) -> dict[str, Any]:
    """ARM endpoint and transport options for azure-mgmt clients (tests point them at a loopback stand-in)."""
    options = {"base_url": base_url or ARM, **kwargs}
    options.setdefault("retry_total", 3)
    return options


def run_main(step: Callable[..., str], credential: Any = None, env: Mapping[str, str] | None = None) -> int:
    """Run one hook with the developer's sign-in (DefaultAzureCredential); print its outcome or its error."""
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    try:
        print(step(env if env is not None else os.environ, credential))
    except HookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


# Answers of a Functions host that is not ready yet, right after a deploy: 400 "Encountered an error
# (ServiceUnavailable) from host runtime", 403 while it cannot reach azure-webjobs-secrets (its role assignments
# still propagating), 404 before the site's host is up; and throttling / server errors past the SDK's own retries.
NOT_READY = frozenset({400, 403, 404, 409, 429, 500, 502, 503, 504})


def answer(exc: HttpResponseError) -> str:
    """One line for an ARM error answer: status, reason and the message, also from App Service's own error shape
    ({"Code": ..., "Message": ...}), which the SDK reports only as "Operation returned an invalid status"."""
    message = exc.error.message if exc.error is not None and exc.error.message else ""
    if not message and exc.response is not None:
        try:
            body = exc.response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            message = str(body.get("Message") or body.get("message") or "")
    lines = (message or exc.message or str(exc)).strip().splitlines()
    return f"{exc.status_code} {exc.reason or ''}".strip() + (f": {lines[0]}" if lines else "")


def until_ready(what: str, probe: Callable[[], tuple[Any, str]], *, wait_seconds: float, delay: float,
                advice: str, clock: Callable[[], float] = time.monotonic) -> Any:
    """Call `probe` (-> (value or None, why not)) until it gives a value, retrying NOT_READY answers with backoff
    (delay doubling up to a minute) for at most `wait_seconds`; print each wait; then a HookError naming the last
    answer and what to do."""
    start = clock()
    pause = delay
    while True:
        try:
            found, why = probe()
        except HttpResponseError as exc:
            if exc.status_code not in NOT_READY:
                raise HookError(f"{what}: {answer(exc)}") from None
            found, why = None, answer(exc)
        if found is not None:
            return found
        left = wait_seconds - (clock() - start)
        if left <= 0:
            raise HookError(f"{what}: still failing after {wait_seconds:.0f} s; last answer: "
                            f"{why.rstrip('.')}. {advice}")
        pause = min(pause, left)
        print(f"waiting for {what}: {why} (next try in {pause:.0f} s, giving up in {left:.0f} s)", flush=True)
        time.sleep(pause)
        pause = min(pause * 2, 60.0)

"""What both azd hooks share: the azd environment, the ARM client options, one clear error per failure."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

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

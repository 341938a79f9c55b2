"""BATCH_FFMPEG_PACKAGE parsed: a Batch application package by short id or ARM id, and its variable on a node."""

from __future__ import annotations

import re
from dataclasses import dataclass

_ARM_APP = re.compile(
    r"^(?P<account>/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Batch/batchAccounts/[^/]+)"
    r"/applications/(?P<name>[^/@]+)(?:/versions/(?P<version>[^/@]+))?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class AppPackage:
    """A Batch application package reference: the id to send, the version, and the name on the node."""

    application_id: str  # as given: the short id, or the fully qualified ARM id (what pool creation asks for)
    name: str  # the application's own name (the last segment of an ARM id)
    version: str | None

    @property
    def variable(self) -> str:
        """The environment variable Batch sets on Linux nodes: AZ_BATCH_APP_PACKAGE_<name>_<version>."""

        def flat(text: str) -> str:
            return re.sub(r"[.\-#]", "_", text)

        return f"AZ_BATCH_APP_PACKAGE_{flat(self.name)}" + (f"_{flat(self.version)}" if self.version else "")


def parse_package(value: str) -> AppPackage:
    """BATCH_FFMPEG_PACKAGE: `appid`, `appid@version`, or the ARM id `/subscriptions/.../applications/appid`
    (with `@version` or `/versions/<version>`)."""
    text = value.strip()
    if not text:
        raise ValueError("BATCH_FFMPEG_PACKAGE is empty")
    if text.startswith("/"):
        base, _, at_version = text.partition("@")
        match = _ARM_APP.match(base)
        if match is None:
            raise ValueError(f"BATCH_FFMPEG_PACKAGE={value!r} is not an application's ARM id "
                             "(/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Batch/batchAccounts/"
                             "<account>/applications/<app>)")
        version = match.group("version") or at_version or None
        name = match.group("name")
        return AppPackage(f"{match.group('account')}/applications/{name}", name, version)
    app_id, _, version = text.partition("@")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", app_id) or (version and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}",
                                                                                           version)):
        raise ValueError(f"BATCH_FFMPEG_PACKAGE={value!r} must be appid, appid@version or an application's ARM id")
    return AppPackage(app_id, app_id, version or None)

"""A storage account whose requests take time on the test's clock: the SDK's own pipeline moves the clock."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy

from shared.adapters.storage import BlobStorage, service_client
from shared.settings import Settings


class SlowStorage(SansIOHTTPPolicy):
    """Each request moves the clock (`move(seconds)`): a page of a container's listing by `list_s`, any other
    request by `other_s` (a listing narrowed to a name's prefix, as submit reads a name's stem, returns a handful
    of names: it costs what a point read does)."""

    def __init__(self, move: Callable[[float], None], list_s: float, other_s: float) -> None:
        self.move, self.list_s, self.other_s = move, list_s, other_s
        self.listed = self.other = 0

    def on_request(self, request: PipelineRequest) -> None:  # type: ignore[override]
        query = parse_qs(urlsplit(request.http_request.url).query)
        listing = query.get("comp") == ["list"] and not query.get("prefix", [""])[0]
        self.listed += listing
        self.other += not listing
        self.move(self.list_s if listing else self.other_s)


def slow_storage(settings: Settings, slow: SlowStorage) -> BlobStorage:
    """The real Storage adapter over a client whose pipeline carries `slow`."""
    return BlobStorage(service_client(settings, _additional_pipeline_policies=[slow]))

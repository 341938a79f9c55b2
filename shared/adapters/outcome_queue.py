"""The OutcomeQueue port on Azure Queue Storage: one queue in the app's storage account, identity or connection."""

from __future__ import annotations

import json
import os
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.queue import LinearRetry, QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from shared.adapters.storage import connection_client, identity_endpoint
from shared.ports.outcome_queue import PEEK_MAX, OutcomeQueueUnreachable
from shared.settings import Settings

# An unreachable queue must not hold the monitor up: a few quick tries, then the outbox keeps the event.
# (The storage SDK's default waits 15 s, then 18 s, ... between tries.)
CLIENT_OPTIONS: dict[str, Any] = {"connection_timeout": 5, "read_timeout": 20}


def _quick_retry() -> LinearRetry:
    return LinearRetry(backoff=0.5, random_jitter_range=0.2, retry_total=2)
_UNREACHABLE = (ServiceRequestError, ServiceResponseError, ClientAuthenticationError)


def queue_client(settings: Settings, **kwargs: Any) -> QueueClient | None:
    """The outcome queue's client: Entra ID identity (as for blobs) when AzureWebJobsStorage is unset, else the
    connection string (Azurite's names a QueueEndpoint). Messages are Base64-encoded UTF-8 JSON, what an Azure
    Functions queue trigger reads by default. None when storage is reached by identity through a blob endpoint
    alone, from which no queue endpoint follows (set AzureWebJobsStorage__queueServiceUri)."""
    codec = {"message_encode_policy": TextBase64EncodePolicy(), "message_decode_policy": TextBase64DecodePolicy()}
    if settings.storage_connection == "":
        endpoint = identity_endpoint("queue")
        if endpoint is None and os.environ.get("AzureWebJobsStorage__blobServiceUri"):
            return None
        if endpoint is not None:
            url, credential = endpoint
            return QueueClient(url, settings.outcome_queue, credential=credential, **codec, **kwargs)
    return connection_client(settings.storage_connection, settings.outcome_queue, cls=QueueClient, **codec, **kwargs)

class StorageQueue:
    """The OutcomeQueue port on one Storage queue (`client` is the SDK's QueueClient)."""

    def __init__(self, client: QueueClient) -> None:
        self.client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> StorageQueue | None:
        """The app's outcome queue; None when the settings name no queue endpoint (no events are then sent)."""
        client = queue_client(settings, retry_policy=_quick_retry(), **CLIENT_OPTIONS)
        return None if client is None else cls(client)

    def send(self, event: dict[str, Any]) -> None:
        body = json.dumps(event, ensure_ascii=False, sort_keys=True)
        try:
            try:
                self.client.send_message(body)
            except ResourceNotFoundError:  # the first event: make the queue
                try:
                    self.client.create_queue()
                except ResourceExistsError:
                    pass
                self.client.send_message(body)
        except (*_UNREACHABLE, HttpResponseError) as exc:
            raise OutcomeQueueUnreachable(f"{self.client.url}: {type(exc).__name__}: {exc}") from exc

    def peek(self, limit: int = PEEK_MAX) -> list[dict[str, Any]]:
        try:
            return [json.loads(m.content) for m in self.client.peek_messages(max_messages=min(limit, PEEK_MAX))]
        except ResourceNotFoundError:
            return []
        except (*_UNREACHABLE, HttpResponseError) as exc:
            raise OutcomeQueueUnreachable(f"{self.client.url}: {type(exc).__name__}: {exc}") from exc

    def take(self, limit: int = PEEK_MAX) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        try:
            for message in self.client.receive_messages(messages_per_page=min(limit, PEEK_MAX),
                                                        max_messages=min(limit, PEEK_MAX)):
                out.append(json.loads(message.content))
                self.client.delete_message(message)
        except ResourceNotFoundError:
            return out
        except (*_UNREACHABLE, HttpResponseError) as exc:
            raise OutcomeQueueUnreachable(f"{self.client.url}: {type(exc).__name__}: {exc}") from exc
        return out

"""The composition root: settings -> the Storage, outcome-queue and chosen Batch adapters, as Deps, once per process."""

from __future__ import annotations

import threading

from shared.adapters.outcome_queue import StorageQueue
from shared.adapters.storage import BlobStorage, service_client
from shared.ports.batch import BatchGateway
from shared.ports.deps import Deps
from shared.settings import Settings, SettingsError


def build_gateway(settings: Settings, *, run_tasks: bool = True) -> BatchGateway:
    """The one place that chooses the Batch adapter (BATCH_GATEWAY=local|azure).

    `run_tasks=False` (tools such as the CLI): the local adapter only reads and queues; the host runs tasks.
    """
    if settings.batch_gateway == "azure":
        from shared.adapters.batch.azure import AzureBatchGateway

        return AzureBatchGateway.from_settings(settings)
    from localbatch.gateway import LocalBatchGateway

    return LocalBatchGateway.from_settings(settings, run_tasks=run_tasks)


class StorageUnreachable(SettingsError):
    """Nothing answered at the storage endpoint (`url`): not started, or a wrong account or network."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(message)
        self.url = url


def preflight(settings: Settings, *, quick: bool = False) -> None:
    """Check storage and containers once at start-up; raise SettingsError naming the setting that is wrong
    (StorageUnreachable when nothing answers). `quick` (tools a person waits for): a 3 s connect timeout and no
    retry, so an endpoint that is not there is said within seconds, not after the SDK's 15 s backoff."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

    retry = {"retry_total": 0, "connection_timeout": 3} if quick else {"retry_total": 1, "connection_timeout": 5}
    storage = BlobStorage(service_client(settings, **retry))
    errors: list[str] = []
    for setting, name in (("INPUT_CONTAINER", settings.input_container),
                          ("OUTPUT_CONTAINER", settings.output_container),
                          ("STATE_CONTAINER", settings.state_container)):
        try:
            storage.ensure_containers(name)
        except ServiceRequestError as exc:
            errors.append(f"AzureWebJobsStorage: cannot reach the storage endpoint {storage.service.url} "
                          f"({type(exc).__name__})")
            if len(errors) == 1:
                raise StorageUnreachable(storage.service.url, "Invalid app settings:\n  - " + errors[0]) from None
            break
        except (ClientAuthenticationError, HttpResponseError) as exc:
            if isinstance(exc, ClientAuthenticationError) and exc.response is None:  # no token, no request made
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                errors.append("AzureWebJobsStorage: no Entra ID sign-in for the storage account (run `az login` "
                              f"or `azd auth login`): {reason}")
                break
            if isinstance(exc, ClientAuthenticationError) or exc.status_code in (401, 403):
                errors.append("AzureWebJobsStorage: the storage account rejected the credentials "
                              "(wrong account key, or the identity lacks a Storage Blob Data role)")
                break
            errors.append(f"{setting}={name!r}: the container is not usable and could not be created "
                          f"({exc.status_code} {getattr(exc, 'error_code', '') or exc.reason})")
    if errors:
        raise SettingsError("Invalid app settings:\n  - " + "\n  - ".join(errors))


def _build(settings: Settings, *, run_tasks: bool) -> Deps:
    preflight(settings, quick=not run_tasks)
    return Deps(settings=settings, storage=BlobStorage.from_settings(settings),
                gateway=build_gateway(settings, run_tasks=run_tasks), outcomes=StorageQueue.from_settings(settings))


def tool_deps(settings: Settings | None = None) -> Deps:
    """Dependencies for command-line tools: same settings (the environment's, or those given) and adapters, no task
    execution."""
    return _build(settings or Settings.from_env(), run_tasks=False)


_built: Deps | None = None
_building = threading.Lock()


def deps() -> Deps:
    """The process-wide dependencies the functions use (settings checked, containers ensured), built once.

    The Functions worker runs sync functions on a thread pool and warms nothing up: a burst of first invocations
    calls this from several threads at once. One builds while the others wait for it (each build used to start a
    local dispatcher of its own); a build that raises is not kept, so the next call tries again.
    """
    global _built
    if _built is None:
        with _building:
            if _built is None:
                _built = _build(Settings.from_env(), run_tasks=True)
    return _built

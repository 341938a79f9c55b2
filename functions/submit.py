"""Blob trigger: an input landed in the input container -> submit one conversion task for that blob version."""

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

from shared import bootstrap
from shared.usecases.submit import submit_triggered

bp = func.Blueprint()


@bp.blob_trigger(
    arg_name="client",
    path="%INPUT_CONTAINER%/{name}",
    connection="AzureWebJobsStorage",
    source=func.BlobSource.EVENT_GRID,
)
def submit(client: blob.BlobClient) -> None:
    """Receives a BlobClient (never the bytes) and hands it to the pipeline."""
    submit_triggered(client, bootstrap.deps())

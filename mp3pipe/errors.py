"""Exit codes and errors as one line with the fix: what the `mp3pipe` command prints instead of a traceback."""

from __future__ import annotations

from collections.abc import Callable

OK = 0  # everything asked for was done
FILE_FAILED = 1  # it ran, and at least one file's conversion failed
USAGE = 2  # a wrong argument, a bad setting, or storage/Batch not reachable or not signed in
# Ctrl-C ends with 1 and "Aborted!", as click does.
UNEXPECTED = 3  # a bug or an answer nobody planned for (--debug shows the traceback)

EXIT_CODES_HELP = ("Exit codes: 0 ok; 1 some file failed; 2 usage, settings, or storage/Batch not reachable; "
                   "3 unexpected error.")


class CliError(Exception):
    """An error the user can fix: one line saying what is wrong and what to do, and its exit code."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.code = code


def unreachable(url: str, azure: bool) -> CliError:
    """Nothing answered at the storage endpoint: how to start it (local) or what to check (Azure)."""
    if azure:
        return CliError(f"storage is not reachable at {url}: check the storage account in the azd environment "
                        "(`azd env get-values`) and your network (VPN, firewall, the account's network rules)")
    return CliError(f"storage is not reachable at {url}: start it with `make serve` (Azurite and the local host), "
                    "or set AzureWebJobsStorage to a storage account that is running")


def explain(exc: BaseException) -> tuple[str, int]:
    """One line and an exit code for an exception a command raised."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

    from shared.ports.batch import GatewayError

    if isinstance(exc, CliError):
        return str(exc), exc.code
    if isinstance(exc, ClientAuthenticationError):
        return (f"Azure refused the sign-in ({_first_line(exc)}): run `az login` or `azd auth login`, and check "
                "your role on the storage account and Batch account", USAGE)
    if isinstance(exc, ServiceRequestError):
        return f"Azure is not reachable ({_first_line(exc)}): check your network and try again", USAGE
    if isinstance(exc, HttpResponseError):
        return (f"Azure answered {exc.status_code} {getattr(exc, 'error_code', '') or exc.reason}: "
                f"{_first_line(exc)}", USAGE)
    if isinstance(exc, GatewayError):
        return f"Batch: {_first_line(exc)}: check the Batch account settings (`mp3pipe --azure doctor`)", USAGE
    return (f"unexpected error: {type(exc).__name__}: {_first_line(exc)} (`mp3pipe --debug ...` shows the traceback)",
            UNEXPECTED)


def run(command: Callable[[], object], say: Callable[[str], object], debug: Callable[[], bool]) -> int:
    """Run the command line; an exception becomes one line (through `say`) and its exit code (with `debug()`
    true, an unexpected one is raised with its traceback)."""
    try:
        command()
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else USAGE)
    except Exception as exc:  # noqa: BLE001 - every error ends as one line, never a traceback
        if debug() and not isinstance(exc, CliError):
            raise
        message, code = explain(exc)
        say(message)
        return code
    return OK


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__

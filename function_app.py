"""The Azure Functions app: one FunctionApp with the submit (blob), monitor and reconcile (timer) blueprints."""

import azure.functions as func

from functions.monitor import bp as monitor_bp
from functions.reconcile import bp as reconcile_bp
from functions.submit import bp as submit_bp
from shared.events import quiet_sdk_logging
from shared.settings import Settings

# What reaches Application Insights: the app's own events and the SDKs' warnings, not a record per HTTP request.
quiet_sdk_logging()
# Fail at start-up, naming each bad app setting, rather than with a stack trace at the first file.
Settings.from_env()

app = func.FunctionApp()
app.register_functions(submit_bp)
app.register_functions(monitor_bp)
app.register_functions(reconcile_bp)

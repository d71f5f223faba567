"""The Chalice app: its middleware, its routes and its Lambda functions. The logic lives in chalicelib/.

Every function the stack deploys loads this module, so it imports only what all of them need. Chalice and the
routes (one blueprint per capability, ``chalicelib/<capability>/routes.py``) load only where the API runs
(``APP_FUNCTION`` unset, as under ``make dev``, the tests and ``chalice package``; the stack sets it on each of
the other functions, which Lambda then calls as plain functions). Each function imports its capability when
its first event comes. So the batch worker never loads Chalice, the routes or the console, and the ingest
never loads the phone-number library. ``make bench`` measures each function's cold import.
"""
import gc
import os

# A Lambda cold start imports this module and what its function runs, then makes the function's AWS clients:
# botocore's models alone are hundreds of thousands of objects, and every burst of them has the garbage
# collector walk everything imported before. So on Lambda it is paused until the first event has been handled
# (``_cold_start_over``), which takes about a sixth off a cold start (``make bench``).
if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    gc.disable()

# The Chalice name of the function the API runs as; the stack gives each other function its own name here.
API = "api_handler"
FUNCTION = os.environ.get("APP_FUNCTION") or API


def _cold_start_over() -> None:
    """Every function, after every event: the collector runs again once the first event is handled."""
    if not gc.isenabled():
        gc.enable()


if FUNCTION == API:
    from chalice import Chalice

    from chalicelib.console.routes import routes as open_routes
    from chalicelib.core.web import contract_errors, remember_content_type_checks
    from chalicelib.keys.routing import gate as authorizer
    from chalicelib.keys.routes import routes as key_routes
    from chalicelib.replies.routes import routes as reply_routes
    from chalicelib.reports.routes import routes as report_routes
    from chalicelib.sending.routes import routes as send_routes
    from chalicelib.templates.routes import routes as template_routes
    from chalicelib.webhooks.routes import routes as webhook_routes

    remember_content_type_checks()
    app = Chalice(app_name="sms-sender")
    lambda_function = app.lambda_function

    @app.middleware("all")
    def _every_event(event, get_response):
        try:
            return get_response(event)
        finally:
            _cold_start_over()

    @app.middleware("http")
    def _contract_errors(event, get_response):
        """Errors Chalice answers itself (405, 415) get the contract's error body too."""
        return contract_errors(get_response(event))

    # The authorizer's blueprint holds only the authorizer, a Lambda function of its own whose handler the
    # stack sets to ``chalicelib.keys.authorizer.handler``: its cold start never loads this file, nor Chalice.
    for blueprint in (authorizer, open_routes, send_routes, template_routes, reply_routes, webhook_routes,
                      key_routes, report_routes):
        app.register_blueprint(blueprint)
else:
    # Any other function: Lambda calls the plain function below, so its cold start never loads (nor compiles)
    # Chalice's router. ``chalice package`` runs as the API, where each is a Chalice Lambda function.
    def lambda_function(name: str):
        def declare(handler):
            def run(event, context):
                try:
                    return handler(event, context)
                finally:
                    _cold_start_over()

            run.__name__ = run.__qualname__ = name
            return run

        return declare


# Wired by the CDK stack: an SQS event source on the batch queue (partial batch failures on).
@lambda_function(name="batch_worker")
def batch_worker(event, context):
    from chalicelib.sending import worker  # loaded by this function only, not on the API's cold start

    return worker.handle(event, context)


# Wired by the CDK stack: subscription filters on the SNS delivery-status log groups and the
# End User Messaging event log group.
@lambda_function(name="status_ingest")
def status_ingest(event, context):
    from chalicelib.status import ingest  # loaded by this function only, not on the API's cold start

    return ingest.ingest(event)


# Wired by the CDK stack: the messages table's stream (new and old images).
@lambda_function(name="webhook_fanout")
def webhook_fanout(event, context):
    from chalicelib.webhooks import events  # loaded by this function only, not on the API's cold start

    return events.fanout(event, context)


# Wired by the CDK stack: an SQS event source on the webhook delivery queue (partial batch failures on).
@lambda_function(name="webhook_delivery")
def webhook_delivery(event, context):
    from chalicelib.webhooks import delivery  # loaded by this function only, not on the API's cold start

    return delivery.deliver_batch(event, context)


# Wired by the CDK stack: an EventBridge rule runs it every minute (the local stack: every second). It puts
# scheduled messages that fall due soon on the batch queue, each delayed until its sendAt.
@lambda_function(name="schedule_sweep")
def schedule_sweep(event, context):
    from chalicelib.sending import schedule  # loaded by this function only, not on the API's cold start

    return schedule.sweep(event, context)


# Wired by the CDK stack on two-way stages: an SQS event source on the inbound queue (partial batch
# failures on); a stage without two-way has no such function.
@lambda_function(name="inbound_reply")
def inbound_reply(event, context):
    from chalicelib.replies import inbound  # loaded by this function only, not on the API's cold start

    return inbound.handle(event, context)


# Wired by the CDK stack: its own event source mapping on the messages table's stream (the webhook fanout
# reads it too), retrying without limit: every change counts once in the daily figures.
@lambda_function(name="report_tally")
def report_tally(event, context):
    from chalicelib.reports import tally  # loaded by this function only, not on the API's cold start

    return tally.handle(event, context)


# Wired by the CDK stack: an SQS event source on the export queue (one export at a time, partial batch
# failures on).
@lambda_function(name="export_writer")
def export_writer(event, context):
    from chalicelib.reports import writer  # loaded by this function only, not on the API's cold start

    return writer.handle(event, context)

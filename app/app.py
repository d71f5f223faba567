"""Routes only: each parses the request, calls one service function and shapes the response.
The logic lives in chalicelib/."""
from chalice import Chalice, Response

from chalicelib import openapi
from chalicelib.console import page as console
from chalicelib.core import inputs
from chalicelib.core.settings import get_settings
from chalicelib.core.web import contract_errors, handled, json_body
from chalicelib.replies import optouts
from chalicelib.sending import batches, idempotency, media, messages, validation
from chalicelib.webhooks import endpoints as webhooks

app = Chalice(app_name="sms-sender")
# Send routes accept any body type: the body is parsed as JSON whatever curl labels it.
ANY_BODY = ["application/json", "text/plain", "application/x-www-form-urlencoded", "application/octet-stream"]
protected = {"api_key_required": True}


@app.middleware("http")
def _contract_errors(event, get_response):
    """Errors Chalice answers itself (405, 415) get the contract's error body too."""
    return contract_errors(get_response(event))


def _header(name):
    return app.current_request.headers.get(name)


def _post(route, handler):
    request = app.current_request
    return idempotency.once(route, _header("idempotency-key"), request.raw_body, handler, app.lambda_context)


@app.route("/health", methods=["GET"])
@handled(app)
def health():
    return 200, {"status": "ok"}, {}


@app.route("/", methods=["GET"])
def index():
    return Response(body=console.PAGE, status_code=200, headers={"Content-Type": "text/html; charset=utf-8"})


@app.route("/favicon.ico", methods=["GET"])
def favicon():
    """Open like the console: a browser or a tool asking for the icon gets 204, not a 403."""
    return Response(body="", status_code=204, headers={"Cache-Control": "max-age=86400"})


@app.route("/openapi.json", methods=["GET"])
def openapi_document():
    """The HTTP contract (OpenAPI 3.1), open like /health: chalicelib/openapi.json, read once at import."""
    return Response(body=openapi.BODY, status_code=200, headers={"Content-Type": "application/json"})


def _located(outcome, path):
    """A created resource's ``Location``, added to the outcome after the idempotency layer, so a
    replayed response points where the replaying caller reaches the API."""
    status, body, headers = outcome
    return status, body, {**headers, "Location": _here(path.format(id=body["id"]))}


def _here(path):
    """``path`` (a route's own path, e.g. ``/messages/{id}``) as the caller of this request reaches it.

    Deployed, API Gateway's proxy event carries the path the caller used in ``requestContext.path``:
    ``/api/sms`` on the execute-api domain (stage included), ``/sms`` or ``/<base path>/sms`` on a
    custom domain. ``requestContext.resourcePath`` is the route (``/sms``). Whatever comes before
    the route's segments is the caller's prefix. Under Chalice local and its test client the two are
    the same, and the prefix is empty."""
    context = app.current_request.context or {}
    used = [part for part in (context.get("path") or "").split("/") if part]
    route = [part for part in (context.get("resourcePath") or "").split("/") if part]
    prefix = used[:len(used) - len(route)] if len(used) > len(route) else []
    return "".join(f"/{part}" for part in prefix) + path


def _send(route, parse):
    def handler():
        message = parse(json_body(app.current_request), get_settings())
        return 202, messages.send(message), {}

    return _located(_post(route, handler), "/messages/{id}")


@app.route("/sms", methods=["POST"], content_types=ANY_BODY, **protected)
@handled(app)
def send_sms():
    return _send("sms", validation.sms)


@app.route("/mms", methods=["POST"], content_types=ANY_BODY, **protected)
@handled(app)
def send_mms():
    return _send("mms", validation.mms)


@app.route("/media", methods=["POST"], content_types=ANY_BODY, **protected)
@handled(app)
def create_media_upload():
    def handler():
        content_type, size = validation.media_request(json_body(app.current_request))
        return 201, media.create_upload(get_settings(), content_type=content_type, size=size), {}

    return _post("media", handler)


@app.route("/messages/{message_id}", methods=["GET"], **protected)
@handled(app)
def get_message(message_id):
    return 200, messages.get(message_id), {}


@app.route("/messages", methods=["GET"], **protected)
@handled(app)
def list_messages():
    query = app.current_request.query_params or {}
    return 200, messages.page(inputs.limit(query.get("limit")), query.get("next"), query.get("direction")), {}


@app.route("/opt-outs", methods=["GET"], **protected)
@handled(app)
def list_opt_outs():
    query = app.current_request.query_params or {}
    return 200, optouts.listing(inputs.limit(query.get("limit")), query.get("next"), get_settings()), {}


@app.route("/opt-outs/{number}", methods=["GET"], **protected)
@handled(app)
def get_opt_out(number):
    return 200, optouts.get(number, get_settings()), {}


@app.route("/opt-outs/{number}", methods=["PUT"], **protected)
@handled(app)
def put_opt_out(number):
    status, entry = optouts.put(number, get_settings())
    return status, entry, {}


@app.route("/opt-outs/{number}", methods=["DELETE"], **protected)
@handled(app)
def delete_opt_out(number):
    optouts.delete(number, get_settings())
    return 204, None, {}


@app.route("/batches", methods=["POST"], content_types=ANY_BODY, **protected)
@handled(app)
def create_batch():
    def handler():
        return 202, batches.submit(json_body(app.current_request), get_settings()), {}

    return _located(_post("batches", handler), "/batches/{id}")


@app.route("/batches/{batch_id}", methods=["GET"], **protected)
@handled(app)
def get_batch(batch_id):
    return 200, batches.progress(batch_id), {}


@app.route("/webhooks", methods=["POST"], content_types=ANY_BODY, **protected)
@handled(app)
def create_webhook():
    made = {}  # the secret, when this request made it (a replay of the first answer shows it again)

    def handler():
        resource, made["secret"] = webhooks.create(json_body(app.current_request), get_settings())
        return 201, resource, {}

    status, body, headers = _located(_post("webhooks", handler), "/webhooks/{id}")
    return status, webhooks.with_secret(body, made.get("secret"), get_settings()), headers


@app.route("/webhooks", methods=["GET"], **protected)
@handled(app)
def list_webhooks():
    return 200, webhooks.listing(get_settings()), {}


@app.route("/webhooks/{webhook_id}", methods=["GET"], **protected)
@handled(app)
def get_webhook(webhook_id):
    return 200, webhooks.get(webhook_id, get_settings()), {}


@app.route("/webhooks/{webhook_id}", methods=["DELETE"], **protected)
@handled(app)
def delete_webhook(webhook_id):
    webhooks.delete(webhook_id, get_settings())
    return 204, None, {}


@app.route("/webhooks/{webhook_id}/rotate", methods=["POST"], content_types=ANY_BODY, **protected)
@handled(app)
def rotate_webhook_secret(webhook_id):
    made = {}

    def handler():
        resource, made["secret"] = webhooks.rotate(webhook_id, get_settings())
        return 200, resource, {}

    status, body, headers = _post(f"webhooks/{webhook_id}/rotate", handler)
    return status, webhooks.with_secret(body, made.get("secret"), get_settings()), headers


@app.route("/webhooks/{webhook_id}/deliveries", methods=["GET"], **protected)
@handled(app)
def list_webhook_deliveries(webhook_id):
    query = app.current_request.query_params or {}
    limit = inputs.limit(query.get("limit"), default=webhooks.DELIVERIES_LIMIT)
    return 200, webhooks.deliveries(webhook_id, limit, get_settings()), {}


# Wired by the CDK stack: an SQS event source on the batch queue (partial batch failures on).
@app.lambda_function(name="batch_worker")
def batch_worker(event, context):
    from chalicelib.sending import worker  # loaded by this function only, not on the API's cold start

    return worker.handle(event, context)


# Wired by the CDK stack: subscription filters on the SNS delivery-status log groups and the
# End User Messaging event log group.
@app.lambda_function(name="status_ingest")
def status_ingest(event, context):
    from chalicelib.status import ingest  # loaded by this function only, not on the API's cold start

    return ingest.ingest(event)


# Wired by the CDK stack: the messages table's stream (new and old images).
@app.lambda_function(name="webhook_fanout")
def webhook_fanout(event, context):
    from chalicelib.webhooks import events  # loaded by this function only, not on the API's cold start

    return events.fanout(event, context)


# Wired by the CDK stack: an SQS event source on the webhook delivery queue (partial batch failures on).
@app.lambda_function(name="webhook_delivery")
def webhook_delivery(event, context):
    from chalicelib.webhooks import delivery  # loaded by this function only, not on the API's cold start

    return delivery.deliver_batch(event, context)


# Wired by the CDK stack on two-way stages: an SQS event source on the inbound queue (partial batch
# failures on); a stage without two-way has no such function.
@app.lambda_function(name="inbound_reply")
def inbound_reply(event, context):
    from chalicelib.replies import inbound  # loaded by this function only, not on the API's cold start

    return inbound.handle(event, context)

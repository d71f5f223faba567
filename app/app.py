"""Routes only: each parses the request, calls one service function and shapes the response.
The logic lives in chalicelib/."""
from chalice import Chalice, Response

from chalicelib import batches, console, idempotency, media, messages, validation
from chalicelib.settings import get_settings
from chalicelib.web import handled

app = Chalice(app_name="sms-sender")
# Send routes accept any body type: the body is parsed as JSON whatever curl labels it.
ANY_BODY = ["application/json", "text/plain", "application/x-www-form-urlencoded", "application/octet-stream"]
protected = {"api_key_required": True}


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


def _send(route, parse):
    def handler():
        message = parse(validation.parse_json(app.current_request.raw_body), get_settings())
        resource = messages.send(message)
        return 202, resource, {"Location": f"/messages/{resource['id']}"}

    return _post(route, handler)


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
        content_type, size = validation.media_request(validation.parse_json(app.current_request.raw_body))
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
    return 200, messages.page(validation.limit(query.get("limit")), query.get("next")), {}


@app.route("/batches", methods=["POST"], content_types=ANY_BODY, **protected)
@handled(app)
def create_batch():
    def handler():
        accepted = batches.submit(validation.parse_json(app.current_request.raw_body), get_settings())
        return 202, accepted, {"Location": f"/batches/{accepted['id']}"}

    return _post("batches", handler)


@app.route("/batches/{batch_id}", methods=["GET"], **protected)
@handled(app)
def get_batch(batch_id):
    return 200, batches.progress(batch_id), {}


# Wired by the CDK stack: an SQS event source on the batch queue (partial batch failures on).
@app.lambda_function(name="batch_worker")
def batch_worker(event, context):
    from chalicelib import worker  # loaded by this function only, not on the API's cold start

    return worker.handle(event, context)


# Wired by the CDK stack: subscription filters on the SNS delivery-status log groups and the
# End User Messaging event log group.
@app.lambda_function(name="status_ingest")
def status_ingest(event, context):
    from chalicelib import status  # loaded by this function only, not on the API's cold start

    return status.ingest(event)

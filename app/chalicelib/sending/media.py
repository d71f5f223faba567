"""MMS media in the stage's private S3 bucket: presigned uploads and the preflight before a send."""
from __future__ import annotations

import mimetypes
import uuid

from botocore.exceptions import ClientError

from ..core import aws, schema
from ..core.errors import InvalidRequest, NotFound, Unprocessable
from ..core.settings import Settings

KB, MB = 1024, 1024 * 1024
# From the End User Messaging SMS user guide, "MMS file types, size and character limits".
IMAGE_LIMIT = 2 * MB
OTHER_LIMIT = 600 * KB
MAX_BYTES = {
    "image/gif": IMAGE_LIMIT, "image/jpeg": IMAGE_LIMIT, "image/png": IMAGE_LIMIT,
    "image/tiff": OTHER_LIMIT,
    "audio/3gpp": OTHER_LIMIT, "video/3gpp": OTHER_LIMIT, "audio/3gpp2": OTHER_LIMIT, "video/3gpp2": OTHER_LIMIT,
    "audio/amr": OTHER_LIMIT, "audio/mp4": OTHER_LIMIT, "video/mp4": OTHER_LIMIT, "audio/mpeg": OTHER_LIMIT,
    "audio/ogg": OTHER_LIMIT, "video/quicktime": OTHER_LIMIT, "video/webm": OTHER_LIMIT,
    "text/calendar": OTHER_LIMIT, "text/vcard": OTHER_LIMIT, "text/x-vcard": OTHER_LIMIT,
    "application/pdf": OTHER_LIMIT,
}


def limit_for(content_type: str) -> int:
    """Bytes allowed for a media type, or a 422 naming the supported types."""
    base = (content_type or "").split(";")[0].strip().lower()
    if base not in MAX_BYTES:
        raise Unprocessable(
            "MediaTypeNotSupported",
            f"MMS does not support {content_type or 'media without a type'}; use one of {', '.join(sorted(MAX_BYTES))}.",
            field="contentType",
        )
    return MAX_BYTES[base]


def check_size(content_type: str, size: int, field: str) -> None:
    limit = limit_for(content_type)
    if size > limit:
        raise Unprocessable(
            "MediaTooLarge", f"{content_type} media may be at most {limit} bytes for MMS; this is {size}.", field=field
        )


def parse_url(settings: Settings, media_url) -> tuple[str, str]:
    """Split ``s3://bucket/key``; refuse any bucket but the stage's media bucket."""
    if not isinstance(media_url, str) or not media_url.strip():
        raise InvalidRequest("MissingField", "'mediaUrl' is required.", field="mediaUrl")
    prefix = f"s3://{settings.media_bucket}/"
    if not media_url.startswith(prefix) or len(media_url) == len(prefix):
        raise InvalidRequest(
            "InvalidMediaUrl", f"'mediaUrl' must be {prefix}<key>, an object in this stage's media bucket.",
            field="mediaUrl",
        )
    return settings.media_bucket, media_url[len(prefix):]


def preflight(settings: Settings, media_url) -> str:
    """HeadObject the media: it must exist, and its type and size must be ones MMS accepts."""
    bucket, key = parse_url(settings, media_url)
    s3 = aws.client("s3")
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise NotFound("MediaNotFound", f"No media at {media_url}; upload it first (POST /media).",
                           field="mediaUrl") from None
        raise
    content_type = head.get("ContentType", "")
    limit_for(content_type)
    check_size(content_type, head.get("ContentLength", 0), "mediaUrl")
    return media_url


def create_upload(settings: Settings, *, content_type: str, size: int) -> dict:
    """A presigned POST whose policy pins the content type and caps the size."""
    check_size(content_type, size, "size")
    extension = mimetypes.guess_extension(content_type.split(";")[0].strip()) or ""
    key = f"{schema.MEDIA_PREFIX}{uuid.uuid4()}{extension}"
    post = aws.client("s3").generate_presigned_post(
        Bucket=settings.media_bucket,
        Key=key,
        Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, size]],
        ExpiresIn=settings.media_upload_expires_seconds,
    )
    return {
        "mediaUrl": f"s3://{settings.media_bucket}/{key}",
        "upload": {"url": post["url"], "fields": post["fields"]},
        "expiresIn": settings.media_upload_expires_seconds,
    }

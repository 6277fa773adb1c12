"""Every request carries a correlation id, echoed in the response and in the logs."""

import logging
import re
import uuid

HEADER = "X-Request-ID"
VALID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
logger = logging.getLogger("monolith.requests")


class RequestIdMiddleware:
    """Reuse the caller's X-Request-ID (from the proxy) when sane, otherwise mint one."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get(HEADER, "")
        request.request_id = incoming if VALID.match(incoming) else uuid.uuid4().hex
        response = self.get_response(request)
        response[HEADER] = request.request_id
        logger.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={"request_id": request.request_id},
        )
        return response

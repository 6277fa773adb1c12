"""The one pagination style of the public API."""

from typing import Any

from django.utils import timezone
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response


class StandardPagination(PageNumberPagination):
    """`?page=N&page_size=M` (M at most 100); body {count, next, previous, generated_at,
    results}: `generated_at` is when the page was read, so a client can show "prices as of"."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_paginated_response(self, data: Any) -> Response:
        assert self.page is not None
        return Response(
            {
                "count": self.page.paginator.count,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "generated_at": timezone.now().isoformat(timespec="microseconds"),
                "results": data,
            }
        )

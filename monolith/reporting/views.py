"""Back-office reports: sales per day, best sellers, stock."""

from datetime import date, timedelta
from decimal import Decimal

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from monolith.core.money import quantize
from monolith.reporting import queries


def _date_param(request, name: str, default: date) -> date:
    raw = request.query_params.get(name)
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError as error:
        raise ValidationError({name: [f"{raw!r} is not a YYYY-MM-DD date"]}) from error


class SalesReportView(APIView):
    """`?start=YYYY-MM-DD&end=YYYY-MM-DD` (default: the last 30 days)."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        today = timezone.now().date()
        start = _date_param(request, "start", today - timedelta(days=30))
        end = _date_param(request, "end", today)
        days = queries.sales_by_day(start, end)
        totals = {key: sum(day[key] for day in days) for key in ("orders", "items")}
        for key in ("revenue", "refunded", "net"):
            totals[key] = quantize(sum((day[key] for day in days), Decimal("0")))
        body = {"start": start, "end": end, "days": days, "totals": totals}
        return Response(body)


class TopProductsView(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        limit = min(int(request.query_params.get("limit", 10)), 100)
        return Response(queries.top_products(limit))


class CustomerReportView(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        limit = min(int(request.query_params.get("limit", 20)), 100)
        return Response(queries.customer_lifetime_values(limit))


class StockReportView(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        low_only = request.query_params.get("low") in ("1", "true")
        return Response(
            {"totals": queries.stock_totals(), "products": queries.stock_report(low_only)}
        )

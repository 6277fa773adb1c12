from django.urls import path

from monolith.reporting.views import (
    CustomerReportView,
    SalesReportView,
    StockReportView,
    TopProductsView,
)

urlpatterns = [
    path("reports/sales", SalesReportView.as_view(), name="report-sales"),
    path("reports/top-products", TopProductsView.as_view(), name="report-top-products"),
    path("reports/customers", CustomerReportView.as_view(), name="report-customers"),
    path("reports/stock", StockReportView.as_view(), name="report-stock"),
]

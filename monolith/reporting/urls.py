from django.urls import path

from monolith.reporting.views import SalesReportView, StockReportView, TopProductsView

urlpatterns = [
    path("reports/sales", SalesReportView.as_view(), name="report-sales"),
    path("reports/top-products", TopProductsView.as_view(), name="report-top-products"),
    path("reports/stock", StockReportView.as_view(), name="report-stock"),
]

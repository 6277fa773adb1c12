from django.apps import AppConfig


class ReportingConfig(AppConfig):
    name = "monolith.reporting"
    label = "reporting"

    def ready(self) -> None:
        # Connected by hand rather than with @receiver: this app predates the decorator style.
        from monolith.payments.signals import payment_captured, refund_issued
        from monolith.reporting import receivers

        payment_captured.connect(receivers.on_payment, dispatch_uid="reporting.on_payment")
        refund_issued.connect(receivers.on_refund, dispatch_uid="reporting.on_refund")

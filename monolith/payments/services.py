"""Charge an order and refund a payment; each sends the signal other apps react to."""

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from monolith.core.money import quantize
from monolith.payments.gateway import get_gateway
from monolith.payments.models import Payment, Refund
from monolith.payments.signals import payment_captured, refund_issued


class PaymentError(Exception):
    """The provider refused a charge or refund; the message is safe to show the shopper."""


@transaction.atomic
def charge_order(order, token: str) -> Payment:
    """Capture the order's total; on success `payment_captured` fires inside the transaction."""
    gateway = get_gateway()
    result = gateway.charge(order.total, order.currency, token, idempotency_key=order.number)
    payment = Payment.objects.create(
        order=order,
        amount=order.total,
        currency=order.currency,
        gateway=gateway.name,
        gateway_reference=result.reference,
        status=Payment.Status.CAPTURED if result.ok else Payment.Status.FAILED,
        failure_reason=result.message,
        captured_at=timezone.now() if result.ok else None,
    )
    if result.ok:
        payment_captured.send(sender=Payment, payment=payment)
    return payment


@transaction.atomic
def refund_payment(payment: Payment, amount: Decimal | None = None, reason: str = "") -> Refund:
    """Refund `amount` (default: all that is left) of a captured payment."""
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    refundable = payment.amount - payment.refunded_amount
    amount = quantize(refundable if amount is None else amount)
    if payment.status not in (Payment.Status.CAPTURED, Payment.Status.PARTIALLY_REFUNDED):
        raise PaymentError(
            f"payment {payment.pk} is {payment.status}; only captured payments refund"
        )
    if not Decimal("0") < amount <= refundable:
        raise PaymentError(f"refund amount must be between 0.01 and {refundable}")
    key = f"{payment.pk}:{payment.refunds.count() + 1}"
    result = get_gateway().refund(payment.gateway_reference, amount, idempotency_key=key)
    if not result.ok:
        raise PaymentError(f"the payment provider refused the refund: {result.message}")
    refund = Refund.objects.create(
        payment=payment, amount=amount, reason=reason, gateway_reference=result.reference
    )
    full = amount == refundable
    payment.status = Payment.Status.REFUNDED if full else Payment.Status.PARTIALLY_REFUNDED
    payment.save(update_fields=["status", "updated_at"])
    refund_issued.send(sender=Refund, refund=refund, full=full)
    return refund

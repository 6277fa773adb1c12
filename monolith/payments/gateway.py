"""The payment service provider, behind an interface so tests and the demo need no network."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class GatewayResult:
    """What the provider answered: success, its reference, and why not if it failed."""

    ok: bool
    reference: str
    message: str = ""


class PaymentGateway(Protocol):
    name: str

    def charge(
        self, amount: Decimal, currency: str, token: str, idempotency_key: str
    ) -> GatewayResult:
        """Authorize and capture `amount` on the card behind `token`."""
        ...

    def refund(self, reference: str, amount: Decimal, idempotency_key: str) -> GatewayResult:
        """Give back `amount` of the charge `reference`."""
        ...


class FakeGateway:
    """Deterministic stand-in: token "tok_declined" is declined, every other token succeeds."""

    name = "fake"
    DECLINED = "tok_declined"

    @staticmethod
    def _reference(prefix: str, key: str) -> str:
        return f"{prefix}_{hashlib.sha256(key.encode()).hexdigest()[:16]}"

    def charge(
        self, amount: Decimal, currency: str, token: str, idempotency_key: str
    ) -> GatewayResult:
        if token == self.DECLINED:
            return GatewayResult(False, "", "card declined")
        if amount <= 0:
            return GatewayResult(False, "", "amount must be positive")
        return GatewayResult(True, self._reference("ch", idempotency_key))

    def refund(self, reference: str, amount: Decimal, idempotency_key: str) -> GatewayResult:
        return GatewayResult(True, self._reference("re", f"{reference}:{idempotency_key}"))


def get_gateway() -> PaymentGateway:
    """The gateway named by settings.PAYMENT_GATEWAY (a dotted class path)."""
    path = getattr(settings, "PAYMENT_GATEWAY", "monolith.payments.gateway.FakeGateway")
    return import_string(path)()

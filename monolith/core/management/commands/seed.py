"""`python -m monolith.manage seed --scale N`: deterministic demo data for every app."""

import time

from django.core.management.base import BaseCommand, CommandError

from monolith.catalog.models import Product
from monolith.core import seeding


class Command(BaseCommand):
    help = (
        "Fill an empty shop with deterministic data: per unit of --scale, 500 products, "
        "200 customers, 1000 orders (with lines, payments, shipments) and 300 reviews. "
        "Does nothing if products already exist, so it is safe on every container start."
    )

    def add_arguments(self, parser):
        parser.add_argument("--scale", type=float, default=1.0, help="size multiplier (default 1)")
        parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")

    def handle(self, *args, scale: float, seed: int, **options):
        if scale <= 0:
            raise CommandError(f"--scale must be positive, got {scale}")
        existing = Product.objects.count()
        if existing:
            self.stdout.write(f"already seeded ({existing} products); nothing to do")
            return
        sizes = seeding.Sizes.for_scale(scale)
        self.stdout.write(f"seeding {sizes} ...")
        started = time.perf_counter()
        counts = seeding.seed(scale, seed)
        seconds = time.perf_counter() - started
        summary = ", ".join(f"{n} {kind}" for kind, n in counts.items())
        self.stdout.write(self.style.SUCCESS(f"seeded {summary} in {seconds:.1f}s"))

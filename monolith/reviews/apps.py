from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "monolith.reviews"
    label = "reviews"

"""JSON rendering that never turns money into a float."""

from decimal import Decimal

from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder


class DecimalAsStringEncoder(JSONEncoder):
    def default(self, obj):
        if isinstance(obj, Decimal):
            return str(obj)
        return super().default(obj)


class DecimalAsStringJSONRenderer(JSONRenderer):
    encoder_class = DecimalAsStringEncoder

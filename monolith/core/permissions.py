"""Permission classes shared by the apps' API views."""

from rest_framework.permissions import SAFE_METHODS, BasePermission


class IsStaffOrReadOnly(BasePermission):
    """Anyone may read; only staff may write (the back office edits the catalog)."""

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return bool(request.user and request.user.is_staff)


class OwnedByRequestUserMixin:
    """Viewset mixin: staff see every row, a customer only rows whose `owner_lookup` is them.

    Set `owner_lookup` (an ORM path to the user, e.g. "order__customer__user") and implement
    `base_queryset()`; `staff_sees_all = False` limits staff to their own rows too.
    """

    owner_lookup = "customer__user"
    staff_sees_all = True

    def base_queryset(self):
        raise NotImplementedError

    def get_queryset(self):
        rows = self.base_queryset()
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return rows.none()
        if self.staff_sees_all and self.request.user.is_staff:
            return rows
        return rows.filter(**{self.owner_lookup: self.request.user})

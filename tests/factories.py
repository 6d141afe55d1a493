"""factory_boy factories shared by every test module."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from core.models import Membership, Organization, Role
from crm.models import Contact
from livecommerce.models import Product, Room, StreamerProfile


class TenantFactory(factory.django.DjangoModelFactory):
    """Tenant models refuse ``objects`` without an org; factories write through ``unscoped``."""

    class Meta:
        abstract = True

    @classmethod
    def _get_manager(cls, model_class):
        return model_class.unscoped


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"org{n}")
    name = factory.Sequence(lambda n: f"品牌{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw-123456")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    org = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.SALES


class StreamerProfileFactory(TenantFactory):
    class Meta:
        model = StreamerProfile

    org = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"主播{n}")


class RoomFactory(TenantFactory):
    class Meta:
        model = Room

    streamer = factory.SubFactory(StreamerProfileFactory)
    org = factory.SelfAttribute("streamer.org")
    title = factory.Sequence(lambda n: f"直播间{n}")
    scheduled_start = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))


class ProductFactory(TenantFactory):
    class Meta:
        model = Product

    org = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"商品{n}")
    price = Decimal("99.00")
    stock = 100


class ContactFactory(TenantFactory):
    class Meta:
        model = Contact

    org = factory.SubFactory(OrganizationFactory)
    nickname = factory.Sequence(lambda n: f"观众{n}")

from django.contrib import admin

from core.admin import TenantAdmin
from livecommerce.models import Product, Room, RoomProduct, StreamerProfile


@admin.register(StreamerProfile)
class StreamerProfileAdmin(TenantAdmin):
    list_display = ["name", "user", "followers_count"]
    search_fields = ["name"]


class RoomProductInline(admin.TabularInline):
    model = RoomProduct
    extra = 0
    exclude = ["org"]


@admin.register(Room)
class RoomAdmin(TenantAdmin):
    list_display = ["title", "streamer", "status", "scheduled_start", "started_at", "ended_at"]
    list_filter = ["status"]
    search_fields = ["title"]
    readonly_fields = ["stream_key"]
    inlines = [RoomProductInline]

    def save_formset(self, request, form, formset, change):
        for obj in formset.save(commit=False):
            obj.org_id = form.instance.org_id
            obj.save()
        formset.save_m2m()
        for obj in formset.deleted_objects:
            obj.delete()


@admin.register(Product)
class ProductAdmin(TenantAdmin):
    list_display = ["name", "price", "original_price", "stock", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name"]

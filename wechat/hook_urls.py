from django.urls import path

from wechat import hooks

urlpatterns = [
    path("<int:account_id>", hooks.wechat_callback, name="wechat-callback"),
]

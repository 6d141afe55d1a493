from django.urls import path

from campaigns.wechat import hooks

urlpatterns = [
    path("<int:account_id>", hooks.wechat_callback, name="wechat-callback"),
]

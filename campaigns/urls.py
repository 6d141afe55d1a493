from django.urls import path

from campaigns import apis, journey_apis

urlpatterns = [
    path("templates", apis.TemplateListApi.as_view(), name="templates"),
    path(
        "templates/<int:template_id>/approval",
        apis.TemplateApprovalApi.as_view(),
        name="template-approval",
    ),
    path("campaigns", apis.CampaignListApi.as_view(), name="campaigns"),
    path(
        "campaigns/send-time-preview",
        apis.SendTimePreviewApi.as_view(),
        name="campaign-send-time-preview",
    ),
    path("campaigns/<int:campaign_id>", apis.CampaignDetailApi.as_view(), name="campaign"),
    path(
        "campaigns/<int:campaign_id>/preview",
        apis.CampaignPreviewApi.as_view(),
        name="campaign-preview",
    ),
    path(
        "campaigns/<int:campaign_id>/launch",
        apis.CampaignLaunchApi.as_view(),
        name="campaign-launch",
    ),
    path(
        "campaigns/<int:campaign_id>/stats", apis.CampaignStatsApi.as_view(), name="campaign-stats"
    ),
    path(
        "campaigns/<int:campaign_id>/allocations",
        apis.CampaignAllocationsApi.as_view(),
        name="campaign-allocations",
    ),
    path(
        "campaigns/<int:campaign_id>/deliveries",
        apis.CampaignDeliveriesApi.as_view(),
        name="campaign-deliveries",
    ),
    path(
        "leads/<int:lead_id>/deliveries",
        apis.LeadDeliveriesApi.as_view(),
        name="lead-deliveries",
    ),
    path("journeys", journey_apis.JourneyListApi.as_view(), name="journeys"),
    path("journeys/<int:journey_id>", journey_apis.JourneyDetailApi.as_view(), name="journey"),
    path(
        "journeys/<int:journey_id>/activate",
        journey_apis.JourneyActivateApi.as_view(),
        name="journey-activate",
    ),
    path(
        "journeys/<int:journey_id>/results",
        journey_apis.JourneyResultsApi.as_view(),
        name="journey-results",
    ),
    path(
        "journeys/<int:journey_id>/pause",
        journey_apis.JourneyPauseApi.as_view(),
        name="journey-pause",
    ),
    path("staff-contact", journey_apis.StaffContactApi.as_view(), name="staff-contact"),
    path(
        "staff-contact/wechat-bind",
        journey_apis.StaffWeChatBindApi.as_view(),
        name="staff-contact-wechat-bind",
    ),
    path(
        "staff-contact/wechat-bind/<int:bind_id>",
        journey_apis.StaffWeChatBindStatusApi.as_view(),
        name="staff-contact-wechat-bind-status",
    ),
]

from django.urls import path

from crm import apis, apis_viewer

urlpatterns = [
    path("viewer/consents", apis_viewer.ViewerConsentsApi.as_view(), name="viewer-consents"),
    path("leads", apis.LeadListApi.as_view(), name="leads"),
    path("leads/rescore", apis.RescoreApi.as_view(), name="leads-rescore"),
    path("leads/assign", apis.LeadAssignApi.as_view(), name="leads-assign"),
    path("leads/export", apis.LeadExportApi.as_view(), name="leads-export"),
    path("leads/import", apis.LeadImportApi.as_view(), name="leads-import"),
    path("leads/jobs/<int:job_id>", apis.LeadJobApi.as_view(), name="lead-job"),
    path(
        "leads/jobs/<int:job_id>/download",
        apis.LeadJobDownloadApi.as_view(),
        name="lead-job-download",
    ),
    path("leads/stats", apis.LeadStatsApi.as_view(), name="leads-stats"),
    path("leads/<int:lead_id>", apis.LeadDetailApi.as_view(), name="lead-detail"),
    path("leads/<int:lead_id>/notes", apis.LeadNoteApi.as_view(), name="lead-notes"),
    path("leads/<int:lead_id>/tasks", apis.LeadTaskApi.as_view(), name="lead-tasks"),
    path("leads/<int:lead_id>/consents", apis.LeadConsentApi.as_view(), name="lead-consents"),
    path("leads/<int:lead_id>/erase", apis.LeadEraseApi.as_view(), name="lead-erase"),
    path(
        "leads/<int:lead_id>/personal-data",
        apis.LeadPersonalDataApi.as_view(),
        name="lead-personal-data",
    ),
    path("leads/<int:lead_id>/merge", apis.LeadMergeApi.as_view(), name="lead-merge"),
    path("merges/<int:merge_id>/undo", apis.MergeUndoApi.as_view(), name="merge-undo"),
    path("tasks", apis.TaskListApi.as_view(), name="crm-tasks"),
    path("tasks/<int:task_id>/complete", apis.TaskCompleteApi.as_view(), name="crm-task-complete"),
    path("scoring-rules", apis.ScoringRuleListApi.as_view(), name="scoring-rules"),
    path("scoring-rules/<int:rule_id>", apis.ScoringRuleDetailApi.as_view(), name="scoring-rule"),
    path("segments", apis.SegmentListApi.as_view(), name="segments"),
    path("segments/preview", apis.ConditionPreviewApi.as_view(), name="segments-preview"),
    path("segments/<int:segment_id>", apis.SegmentDetailApi.as_view(), name="segment-detail"),
    path(
        "segments/<int:segment_id>/preview",
        apis.SegmentPreviewApi.as_view(),
        name="segment-preview",
    ),
    path("notifications", apis.NotificationListApi.as_view(), name="crm-notifications"),
    path(
        "notifications/<int:notification_id>/read",
        apis.NotificationReadApi.as_view(),
        name="crm-notification-read",
    ),
    path("events", apis.ExternalEventApi.as_view(), name="external-events"),
    path("teams", apis.TeamListApi.as_view(), name="sales-teams"),
    path("teams/candidates", apis.TeamCandidatesApi.as_view(), name="sales-team-candidates"),
    path("teams/<int:team_id>", apis.TeamDetailApi.as_view(), name="sales-team"),
    path("assignment-rules", apis.AssignmentRuleListApi.as_view(), name="assignment-rules"),
    path(
        "assignment-rules/<int:rule_id>",
        apis.AssignmentRuleDetailApi.as_view(),
        name="assignment-rule",
    ),
]

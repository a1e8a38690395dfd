from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "webhooks"

    def ready(self):
        from audit.services import audit_event_recorded
        from webhooks import receivers

        audit_event_recorded.connect(receivers.record_webhook_event, dispatch_uid="webhooks.record_webhook_event")

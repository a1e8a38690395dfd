from django.apps import AppConfig
from django.core import checks


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"

    def ready(self):
        from accounts.cognito import receivers

        receivers.connect()

        from core.limits import check_limits_are_shared

        # config is no app: its deploy check is registered by the app that serves the limits.
        checks.register(check_limits_are_shared, checks.Tags.security, deploy=True)

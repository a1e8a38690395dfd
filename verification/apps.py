from django.apps import AppConfig


class VerificationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "verification"
    verbose_name = "HI Service verification"

    def ready(self):
        from verification import checks, receivers

        receivers.connect()
        checks.register()

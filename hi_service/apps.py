from django.apps import AppConfig


class HiServiceConfig(AppConfig):
    """No models: the app is registered for its ``run_hi_emulator`` command."""

    name = "hi_service"
    verbose_name = "HI Service"

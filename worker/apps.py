from django.apps import AppConfig


class WorkerConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "worker"
    verbose_name = "Background worker"

    def ready(self):
        from core.health import register_health_detail
        from worker.heartbeat import heartbeat_status

        register_health_detail("worker", heartbeat_status)

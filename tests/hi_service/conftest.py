from tests.hi_service_server import hi_service, hi_service_hung, hi_service_server  # noqa: F401

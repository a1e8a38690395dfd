"""The product's URLconf plus /bench/floor, for bench.settings only."""

from django.urls import path

from bench.floor import floor
from config.urls import handler404, handler500
from config.urls import urlpatterns as product_urlpatterns

urlpatterns = [path("bench/floor", floor, name="bench-floor"), *product_urlpatterns]

__all__ = ["handler404", "handler500", "urlpatterns"]

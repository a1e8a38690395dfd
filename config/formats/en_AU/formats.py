# Times people read in the admin are in TIME_ZONE, and always say so (core/operator_time.py):
# "7 Dec 2026, 17:00 AEDT". Django's own en_AU formats supply everything not set here.
DATETIME_FORMAT = "j M Y, H:i T"
SHORT_DATETIME_FORMAT = "d/m/Y H:i T"
TIME_FORMAT = "H:i T"

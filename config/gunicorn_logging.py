"""gunicorn's own loggers with the app's credential redaction (gunicorn.conf.py's logger_class).

The access log format already leaves query strings out, but gunicorn's error log quotes the raw
request line of a request it can't parse ("Invalid request from ip=...: Invalid HTTP Version:
'...&password=hunter2 HTTP/1.1'"): the same filter as every Django handler redacts those."""

from gunicorn.glogging import Logger

from core.logging_filters import RedactCredentials


class RedactingLogger(Logger):
    def setup(self, cfg):
        super().setup(cfg)
        redact = RedactCredentials()
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                handler.addFilter(redact)

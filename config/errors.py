class ApplicationError(Exception):
    """A business rule said no. Carries the contract's machine-readable code and an HTTP status."""

    def __init__(self, message: str, *, code: str, status: int = 400, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.field = field

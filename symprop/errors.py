"""symprop's one error type: a message that says what is wrong and where."""


class SymPropError(Exception):
    """Bad input. str(error) is one line: 'WHERE: WHAT'."""

    def __init__(self, message: str, where: str = ""):
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}" if where else message)

    def at(self, where: str) -> "SymPropError":
        """The same error, located one level further out (a file around a key)."""
        return SymPropError(self.message, f"{where}: {self.where}" if self.where else where)
